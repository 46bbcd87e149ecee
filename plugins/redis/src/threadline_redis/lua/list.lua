-- One page of a listing, walking one sorted set newest first. KEYS[1] the sorted set.
-- ARGV: base, max score, min score (ZRANGE's forms: '+inf', '(123', ...), the cursor's
-- score and id ('' for none: skip those at that score whose id is not below it), a status
-- to keep ('' for any), how many to return. Returns {FIELDS, ...} per session.
local base, max, min, cursor_score, cursor_id, status, wanted = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])

local function below(a, b)  -- byte order, as Python orders str ids (Lua's < follows the locale)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local page, offset, batch = {}, 0, math.max(wanted * 2, 64)
while #page < wanted do
  local gone = 0
  local found = redis.call('ZRANGE', KEYS[1], max, min, 'BYSCORE', 'REV', 'LIMIT', offset, batch, 'WITHSCORES')
  if #found == 0 then break end
  for i = 1, #found, 2 do
    local id = found[i]
    if cursor_id == '' or tonumber(found[i + 1]) ~= tonumber(cursor_score) or below(id, cursor_id) then
      local session = redis.call('HMGET', base .. 's:' .. id, 'st', unpack(FIELDS))
      if not session[2] then  -- expired (ttl): its listing entries go as they are met
        redis.call('ZREM', KEYS[1], id)
        gone = gone + 1
      elseif status == '' or session[1] == status then
        table.remove(session, 1)
        page[#page + 1] = session
        if #page == wanted then break end
      end
    end
  end
  offset = offset + batch - gone
end
return page
