-- Delete every session of a user. KEYS[1] the user's listing. ARGV: base, user.
-- Returns {sessions, messages}.
local sessions, messages = 0, 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', ARGV[1] .. 's:' .. id, 'uid') == ARGV[2] then  -- not one made again by another
    local count = delete_session(ARGV[1], id)
    sessions, messages = sessions + 1, messages + count
  end
end
redis.call('DEL', KEYS[1])  -- left with the entries of sessions that expired (ttl)
return {sessions, messages}
