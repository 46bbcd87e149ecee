-- Messages of a session, read at one moment. KEYS[1] its hash. ARGV: base, id, after (how
-- many to skip), last ('' for all after those), '1' to have the session's FIELDS ('2': and,
-- after them, its revisions as one table), else '',
-- and the revision of a history the caller holds ('' for none; then after is its length).
-- Returns {} if there is no such session; else {count, revision (false if it has none),
-- FIELDS or {}, status changes (seq, change, ...), the first message's seq, messages...}.
-- A caller whose history is at the session's revision gets the messages after it and no
-- status changes (it has them all); one whose history is stale gets all of them again.
local base, id, known = ARGV[1], ARGV[2], ARGV[6]
local count, revision = unpack(redis.call('HMGET', KEYS[1], 'n', 'rv'))
if not count then return {} end
count = stored(count, 'n')
local start, changes = tonumber(ARGV[3]), {}
local stale = known ~= '' and (known ~= revision or start > count)
if stale then start = 0 end
if known == '' or stale then changes = redis.call('HGETALL', base .. 'x:' .. id) end
if ARGV[4] ~= '' then start = math.max(start, count - tonumber(ARGV[4])) end
local session = ARGV[5] ~= '' and redis.call('HMGET', KEYS[1], unpack(FIELDS)) or {}
if ARGV[5] == '2' then session[#session + 1] = redis.call('LRANGE', base .. 'e:' .. id, 0, -1) end
local reply = {count, revision, session, changes, start + 1}
if start < count then
  for _, message in ipairs(redis.call('LRANGE', base .. 'm:' .. id, start, count - 1)) do
    reply[#reply + 1] = message
  end
end
return reply
