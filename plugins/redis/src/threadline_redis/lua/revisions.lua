-- Key layout 1 to 2: give each session named that has no revision one. KEYS[1] the tenant's
-- i:all listing. ARGV: base, then session ids.
local base = ARGV[1]
for i = 2, #ARGV do
  local key = base .. 's:' .. ARGV[i]
  if redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'rv') == 0 then
    redis.call('HSET', key, 'rv', revision(base))
  end
end
return 0
