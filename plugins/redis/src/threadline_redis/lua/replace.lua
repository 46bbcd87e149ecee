-- Replace a session's messages after a seq with new ones, keeping the replaced ones (and
-- their status changes) as a revision at the end of its list BASE e:ID. KEYS[1] the
-- session's hash. ARGV: base, id, (ttl,) the count the caller read, after_seq, then the new
-- messages. Returns {-1} if there is no such session, {-2, count} if its count is not the
-- one read, else {the revision's number, the revision as kept}.
local base, id, ttl = ARGV[1], ARGV[2], take_ttl()
local session = redis.call('HMGET', KEYS[1], 'n', 'u', 'uid', 'st', 'e', 'v')
if not session[1] then return {-1} end
local count = stored(session[1], 'n')
if tonumber(ARGV[3]) ~= count then return {-2, count} end
local after, list, changes_key = tonumber(ARGV[4]), base .. 'm:' .. id, base .. 'x:' .. id
local replaced, changes = redis.call('LRANGE', list, after, -1), {}
for seq = after + 1, count do
  local change = redis.call('HGET', changes_key, seq)
  if change then
    changes[tostring(seq)] = change
    redis.call('HDEL', changes_key, seq)
  end
end
local number, now = (tonumber(session[5]) or 0) + 1, now_us()
local added = #ARGV - 4
local kept = cjson.encode({number, after, added, int(now), replaced, changes})
redis.call('RPUSH', base .. 'e:' .. id, kept)
if after == 0 then redis.call('DEL', list) else redis.call('LTRIM', list, 0, after - 1) end
push(list, ARGV, 5)
local updated_us = math.max(now, stored(session[2], 'u'))
redis.call('HSET', KEYS[1], 'n', int(after + added), 'u', int(updated_us), 'e', int(number), 'rv', revision(base),
  'v', int(stored(session[6], 'v') + 1))
index(base, id, session[3], session[4], updated_us)
touch(base, id, ttl, session[3], session[4])
publish(base, 'replaced', id, {message_count = after + added, revision = number})
return {number, kept}
