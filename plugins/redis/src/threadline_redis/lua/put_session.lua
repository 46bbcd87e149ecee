-- Store a new session with its messages (create: none; import: all of them), or return 0
-- if its id exists. KEYS[1] its hash. ARGV: base, id, (ttl,) record, created_at, version,
-- updated_us, user ('' with has_user '0'), has_user, status, message count, input, output,
-- cached tokens, cost ('' for none), how many revisions follow, the revisions (as
-- replace.lua keeps them), then the messages.
local base, id, ttl = ARGV[1], ARGV[2], take_ttl()
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', base .. 'm:' .. id, base .. 'x:' .. id, base .. 'l:' .. id, base .. 'e:' .. id)  -- of one that expired
local user = ARGV[8] == '1' and ARGV[7] or false
redis.call('HSET', KEYS[1], 'r', ARGV[3], 'c', ARGV[4], 'v', ARGV[5], 'u', ARGV[6], 'st', ARGV[9],
  'n', ARGV[10], 'ti', ARGV[11], 'to', ARGV[12], 'tc', ARGV[13])
if ARGV[14] ~= '' then redis.call('HSET', KEYS[1], 'cost', ARGV[14]) end
if user then redis.call('HSET', KEYS[1], 'uid', user) end
redis.call('HSET', KEYS[1], 'rv', revision(base))
local revisions = tonumber(ARGV[15])
if revisions > 0 then
  redis.call('HSET', KEYS[1], 'e', revisions)
  for i = 16, 15 + revisions do redis.call('RPUSH', base .. 'e:' .. id, ARGV[i]) end
end
push(base .. 'm:' .. id, ARGV, 16 + revisions)
index(base, id, user, ARGV[9], tonumber(ARGV[6]))
touch(base, id, ttl, user, ARGV[9])
publish(base, 'created', id, {message_count = tonumber(ARGV[10]), status = ARGV[9]})
return 1
