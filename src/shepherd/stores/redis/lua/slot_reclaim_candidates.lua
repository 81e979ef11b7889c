-- Slot members that look stale: their hash expired, or they were acquired before a cutoff.
-- Removes nothing: the caller re-reads SQL before releasing any of them.
-- The caller lists the members it read (ZRANGE) and passes their hash keys, so every key touched
-- is declared; a member released in between is skipped, never reported.
-- KEYS[1] slots:{agent}   KEYS[2..n] slot:{agent}:{eid}, one per ARGV[2..n]
-- ARGV[1] cutoff_ms (acquired strictly before it)   ARGV[2..n] execution ids
-- returns a flat list of execution ids (possibly empty)
local out = {}
local cutoff = tonumber(ARGV[1])
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and (redis.call('EXISTS', KEYS[i]) == 0 or tonumber(score) < cutoff) then
    table.insert(out, ARGV[i])
  end
end
return out
