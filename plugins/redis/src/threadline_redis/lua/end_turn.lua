-- Give the lease back if the holder has it, keeping who waits. ARGV: base, id, holder.
local key = ARGV[1] .. 'l:' .. ARGV[2]
if redis.call('HGET', key, 'holder') == ARGV[3] then redis.call('HDEL', key, 'holder') end
return 0
