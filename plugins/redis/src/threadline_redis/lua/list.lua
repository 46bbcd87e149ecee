-- One page of a listing, walking one sorted set newest first. KEYS[1] the sorted set.
-- ARGV: base, max score, min score (ZRANGE's forms: '+inf', '(123', ...), the cursor's
-- score and id (score '' for no cursor; else skip those at that score whose id is not
-- below it), the user or status whose listing this is ('' for the whole tenant's), a
-- status to keep ('' for any), how many to return. Returns {id, FIELDS...} per session.
local base, max, min, cursor_score, cursor_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local of_user, of_status, status, wanted = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])

local function below(a, b)  -- byte order, as Python orders str ids (Lua's < follows the locale)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- An entry is stale when its session expired (ttl), or expired and was made again by
-- another user or in another status: it goes as it is met.
local function stale(session)
  return not session[3] or (of_user ~= '' and session[1] ~= of_user) or (of_status ~= '' and session[2] ~= of_status)
end

local page, offset, batch = {}, 0, math.max(wanted * 2, 64)
-- Start right after the cursor's own entry, if it is still where the cursor saw it: the
-- entries of its time that came before it are then skipped by rank, not walked again (a
-- page through thousands of sessions of one time, an import's, stays as quick as any).
if cursor_score ~= '' and max == cursor_score then
  local score = redis.call('ZSCORE', KEYS[1], cursor_id)
  if score and tonumber(score) == tonumber(cursor_score) then
    offset = redis.call('ZREVRANK', KEYS[1], cursor_id) - redis.call('ZCOUNT', KEYS[1], '(' .. max, '+inf') + 1
  end
end
while #page < wanted do
  local gone = 0
  local found = redis.call('ZRANGE', KEYS[1], max, min, 'BYSCORE', 'REV', 'LIMIT', offset, batch, 'WITHSCORES')
  if #found == 0 then break end
  for i = 1, #found, 2 do
    local id = found[i]
    if cursor_score == '' or tonumber(found[i + 1]) ~= tonumber(cursor_score) or below(id, cursor_id) then
      local session = redis.call('HMGET', base .. 's:' .. id, 'uid', 'st', unpack(FIELDS))
      if stale(session) then
        redis.call('ZREM', KEYS[1], id)
        gone = gone + 1
      elseif status == '' or session[2] == status then
        session[1] = id  -- {uid, st, FIELDS...} becomes {id, FIELDS...}
        table.remove(session, 2)
        page[#page + 1] = session
        if #page == wanted then break end
      end
    end
  end
  offset = offset + batch - gone
end
return page
