-- A session and a range of its messages, read at one moment. KEYS[1] its hash. ARGV: base,
-- id, after_seq, last ('' for all). Returns {} if there is no such session, else
-- {FIELDS, status changes (seq, change, ...), first seq, messages...}.
local base, id = ARGV[1], ARGV[2]
local session = redis.call('HMGET', KEYS[1], unpack(FIELDS))
if not session[1] then return {} end
local count = tonumber(session[3])
local start = tonumber(ARGV[3])
if ARGV[4] ~= '' then start = math.max(start, count - tonumber(ARGV[4])) end
local reply = {session, redis.call('HGETALL', base .. 'x:' .. id), start + 1}
if start < count then
  for _, message in ipairs(redis.call('LRANGE', base .. 'm:' .. id, start, count - 1)) do
    reply[#reply + 1] = message
  end
end
return reply
