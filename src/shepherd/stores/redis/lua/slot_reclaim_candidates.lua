-- Slot members that look stale: their hash expired, or they were acquired before a cutoff.
-- Removes nothing: the caller re-reads SQL before releasing any of them.
-- KEYS[1] slots:{agent}
-- ARGV[1] slot hash key prefix (slot:{agent}:)   ARGV[2] cutoff_ms (acquired before it)
-- returns a flat list of execution ids
local out = {}
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local eid = members[i]
  local score = tonumber(members[i + 1])
  if redis.call('EXISTS', ARGV[1] .. eid) == 0 or score < tonumber(ARGV[2]) then
    table.insert(out, eid)
  end
end
return out
