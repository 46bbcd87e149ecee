-- Record a message's new status. KEYS[1] the session's hash. ARGV: base, id, (ttl,) seq, change.
-- Returns 0 if there is no such session, 1 if it has no such message, else 2.
local ttl = take_ttl()
local session = redis.call('HMGET', KEYS[1], 'n', 'uid', 'st')
local count = session[1]
if not count then return 0 end
local seq = tonumber(ARGV[3])
if seq < 1 or seq > stored(count, 'n') then return 1 end
redis.call('HSET', ARGV[1] .. 'x:' .. ARGV[2], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[1], 'rv', revision(ARGV[1]))
touch(ARGV[1], ARGV[2], ttl, session[2], session[3])
publish(ARGV[1], 'message_status', ARGV[2], {seq = seq})
return 2
