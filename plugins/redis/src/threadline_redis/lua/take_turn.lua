-- threadline.plugin.next_lease, applied atomically by the server's clock. KEYS[1] the
-- session's hash. ARGV: base, id, (ttl,) holder, seconds, waiter seconds. Returns -1 if there is
-- no such session, 1 if the holder has the lease, else 0.
local ttl = take_ttl()
local session = redis.call('HMGET', KEYS[1], 'uid', 'st')
if not session[2] then return -1 end
local key, me, seconds = ARGV[1] .. 'l:' .. ARGV[2], ARGV[3], tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local lease = redis.call('HMGET', key, 'holder', 'until', 'waiter', 'waiter_until')
local holder, until_, waiter, waiter_until = lease[1], tonumber(lease[2]) or 0, lease[3], tonumber(lease[4]) or 0
local function seconds_at(x) return string.format('%.6f', x) end
local other_waiting = waiter and waiter ~= me and waiter_until > now
local taken = 0
if holder == me and until_ > now then
  redis.call('HSET', key, 'until', seconds_at(now + seconds))
  taken = 1
elseif (not holder or until_ <= now) and not other_waiting then
  redis.call('DEL', key)
  redis.call('HSET', key, 'holder', me, 'until', seconds_at(now + seconds))
  taken = 1
elseif not other_waiting then
  redis.call('HSET', key, 'waiter', me, 'waiter_until', seconds_at(now + tonumber(ARGV[5])))
end
touch(ARGV[1], ARGV[2], ttl, session[1], session[2])
return taken
