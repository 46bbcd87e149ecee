-- A range of a session's messages, read at one moment. KEYS[1] its hash. ARGV: base, id,
-- after_seq, last ('' for all), and '1' to have the session's FIELDS too, else ''.
-- Returns {} if there is no such session, else {FIELDS (or {}), status changes (seq,
-- change, ...), first seq, messages...}.
local base, id = ARGV[1], ARGV[2]
local count = redis.call('HGET', KEYS[1], 'n')
if not count then return {} end
count = tonumber(count)
local start = tonumber(ARGV[3])
if ARGV[4] ~= '' then start = math.max(start, count - tonumber(ARGV[4])) end
local session = ARGV[5] == '1' and redis.call('HMGET', KEYS[1], unpack(FIELDS)) or {}
local reply = {session, redis.call('HGETALL', base .. 'x:' .. id), start + 1}
if start < count then
  for _, message in ipairs(redis.call('LRANGE', base .. 'm:' .. id, start, count - 1)) do
    reply[#reply + 1] = message
  end
end
return reply
