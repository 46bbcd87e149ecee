-- Append messages if the first is the session's next seq. KEYS[1] the session's hash.
-- ARGV: base, id, (ttl,) first seq, usage, then the messages. usage is '' when no message
-- has any, else "input output cached" (their sums) and then each message's cost, if any,
-- in order (added one by one, as Usage adds them).
-- Returns -1 if there is no such session, its message count if the seq is not the next,
-- else -2 (a number, not a table: the quickest reply to read).
local base, id, ttl = ARGV[1], ARGV[2], take_ttl()
local session = redis.call('HMGET', KEYS[1], 'n', 'u', 'uid', 'st')
if not session[1] then return -1 end
local count = stored(session[1], 'n')
if tonumber(ARGV[3]) ~= count + 1 then return count end
local k = #ARGV - 4
push(base .. 'm:' .. id, ARGV, 5)
local updated_us = math.max(now_us(), stored(session[2], 'u'))
if ARGV[4] == '' then
  redis.call('HSET', KEYS[1], 'n', int(count + k), 'u', int(updated_us))
else
  local usage = redis.call('HMGET', KEYS[1], 'ti', 'to', 'tc', 'cost')
  local numbers, cost = {}, usage[4] and stored(usage[4], 'cost')
  for number in string.gmatch(ARGV[4], '%S+') do numbers[#numbers + 1] = tonumber(number) end
  for i = 4, #numbers do cost = (cost or 0) + numbers[i] end
  redis.call('HSET', KEYS[1], 'n', int(count + k), 'u', int(updated_us), 'ti', int(stored(usage[1], 'ti') + numbers[1]),
    'to', int(stored(usage[2], 'to') + numbers[2]), 'tc', int(stored(usage[3], 'tc') + numbers[3]))
  if cost then redis.call('HSET', KEYS[1], 'cost', string.format('%.17g', cost)) end
end
index(base, id, session[3], session[4], updated_us)
touch(base, id, ttl, session[3], session[4])
publish(base, 'appended', id, {message_count = count + k})
return -2
