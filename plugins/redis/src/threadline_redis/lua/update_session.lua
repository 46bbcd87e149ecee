-- Replace a session's record if it is at the expected version. KEYS[1] its hash. ARGV: base,
-- id, (ttl,) expected version, record, user, has_user, status. Returns {0} if there is no such
-- session, {1, version} at another version, else {2, FIELDS...} as now stored.
local base, id, ttl = ARGV[1], ARGV[2], take_ttl()
local current = redis.call('HMGET', KEYS[1], 'v', 'u', 'uid', 'st')
if not current[1] then return {0} end
if current[1] ~= ARGV[3] then return {1, current[1]} end
local updated_us = math.max(now_us(), stored(current[2], 'u'))  -- never earlier than before
local user = ARGV[6] == '1' and ARGV[5] or false
unindex(base, id, current[3], current[4])
redis.call('HSET', KEYS[1], 'r', ARGV[4], 'v', int(stored(current[1], 'v') + 1), 'u', int(updated_us), 'st', ARGV[7])
if user then redis.call('HSET', KEYS[1], 'uid', user) else redis.call('HDEL', KEYS[1], 'uid') end
index(base, id, user, ARGV[7], updated_us)
touch(base, id, ttl, user, ARGV[7])
publish(base, 'updated', id, {status = ARGV[7]})
local stored = redis.call('HMGET', KEYS[1], unpack(FIELDS))
table.insert(stored, 1, 2)
return stored
