-- Append messages if the first is the session's next seq. KEYS[1] the session's hash.
-- ARGV: base, id, (ttl,) first seq, input, output, cached tokens, how many messages (k), then k
-- costs ('' for none: added one by one, as Usage adds them), then the k messages.
-- Returns {0} if there is no such session, {1, count} if the seq is not the next, else {2}.
local base, id, ttl = ARGV[1], ARGV[2], take_ttl()
local session = redis.call('HMGET', KEYS[1], 'n', 'u', 'uid', 'st', 'cost')
if not session[1] then return {0} end
local count = tonumber(session[1])
if tonumber(ARGV[3]) ~= count + 1 then return {1, count} end
local k = tonumber(ARGV[7])
local cost = session[5] and tonumber(session[5])
for i = 8, 7 + k do
  if ARGV[i] ~= '' then cost = (cost or 0) + tonumber(ARGV[i]) end
end
push(base .. 'm:' .. id, ARGV, 8 + k)
local updated_us = math.max(now_us(), tonumber(session[2]))
redis.call('HSET', KEYS[1], 'n', int(count + k), 'u', int(updated_us))
redis.call('HINCRBY', KEYS[1], 'ti', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'to', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'tc', ARGV[6])
if cost then redis.call('HSET', KEYS[1], 'cost', string.format('%.17g', cost)) end
index(base, id, session[3], session[4], updated_us)
touch(base, id, ttl)
publish(base, 'appended', id, {message_count = count + k})
return {2}
