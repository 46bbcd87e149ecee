-- Shared by every script (prepended to each). A tenant's keys all start with its base,
-- PREFIX{TENANT}, so that on Redis Cluster every key a script touches is in one slot:
--   BASE s:ID   the session: a hash (see FIELDS)        BASE m:ID  its messages, a list
--   BASE x:ID   status changes of messages, by seq      BASE l:ID  its turn lease, a hash
--   BASE e:ID   its revisions (edits of its history), a list of JSON arrays
--   BASE i:all, BASE i:s:STATUS, BASE i:u:USER          listings: sorted sets by updated_us
--   BASE rv     the tenant's revision counter (see revision below)
-- and each change is published on the channel BASE events (RedisStorage.events reads it).

local FIELDS = {'r', 'c', 'n', 'v', 'u', 'ti', 'to', 'tc', 'cost'}

local function int(x)  -- a Lua number as Redis takes it: tostring would round past 14 digits
  return string.format('%.0f', x)
end

-- A number that a session's hash holds (its FIELDS). A value threadline did not write there
-- is damage, answered as such (the storage raises DataFormatError), not as a Lua error.
local function stored(value, field)
  local number = tonumber(value)
  if not number then error({err = 'DAMAGED the session field ' .. field .. ' holds ' .. tostring(value)}) end
  return number
end

local function push(key, values, first)  -- in chunks: unpack has a limit
  for i = first, #values, 1000 do
    redis.call('RPUSH', key, unpack(values, i, math.min(i + 999, #values)))
  end
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A new revision for a session's 'rv' field, set when the session is made and when a
-- message's status changes: the server's time in microseconds and the last three digits of
-- the tenant's counter. Never the same twice, even after the data is rolled back (a restart
-- from a snapshot, a failover that lost writes), which rolls the counter back with it.
local function revision(base)
  return string.format('%.0f%03d', now_us(), redis.call('INCR', base .. 'rv') % 1000)
end

local function index_keys(base, user, status)
  local keys = {base .. 'i:all', base .. 'i:s:' .. status}
  if user then keys[3] = base .. 'i:u:' .. user end
  return keys
end

local function index(base, id, user, status, updated_us)
  for _, key in ipairs(index_keys(base, user, status)) do redis.call('ZADD', key, int(updated_us), id) end
end

local function unindex(base, id, user, status)
  for _, key in ipairs(index_keys(base, user, status)) do redis.call('ZREM', key, id) end
end

-- A script that changes a session takes the session's idle lifetime in milliseconds ('' for
-- none) as ARGV[3], and takes it out, so that its own arguments keep their places.
local function take_ttl()
  return table.remove(ARGV, 3)
end

-- Keep the session's keys, and the listings it is in, for ttl more milliseconds from now
-- (sliding expiry: a listing goes once every session in it has). Without a ttl, keys that
-- had one (set by a process whose config had a ttl) keep theirs no longer.
local function touch(base, id, ttl, user, status)
  if ttl == '' and redis.call('PTTL', base .. 's:' .. id) < 0 then return end
  local keys = index_keys(base, user, status)
  for _, kind in ipairs({'s:', 'm:', 'x:', 'l:', 'e:'}) do keys[#keys + 1] = base .. kind .. id end
  for _, key in ipairs(keys) do
    if ttl == '' then redis.call('PERSIST', key) else redis.call('PEXPIRE', key, ttl) end
  end
end

local function publish(base, kind, id, fields)
  fields = fields or {}
  fields.kind, fields.session_id = kind, id
  redis.pcall('PUBLISH', base .. 'events', cjson.encode(fields))  -- the write stands even if this fails
end

-- Remove a session and everything of it; its message count, or false if there is none.
local function delete_session(base, id)
  local session = redis.call('HMGET', base .. 's:' .. id, 'n', 'uid', 'st')
  if not session[1] then return false end
  unindex(base, id, session[2], session[3])
  redis.call('DEL', base .. 's:' .. id, base .. 'm:' .. id, base .. 'x:' .. id, base .. 'l:' .. id, base .. 'e:' .. id)
  publish(base, 'deleted', id)
  return stored(session[1], 'n')
end
