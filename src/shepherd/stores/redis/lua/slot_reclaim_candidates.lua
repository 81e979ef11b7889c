-- Slot members that look stale: their hash expired, or their score lies outside a window around
-- now (acquired before a cutoff, or "acquired" in the future beyond the same grace).
-- Removes nothing: the caller re-reads SQL before releasing any of them.
-- The caller lists the members it read (ZRANGE) and passes their hash keys, so every key touched
-- is declared; a member released in between is skipped, never reported.
-- KEYS[1] slots:{agent}   KEYS[2..n] slot:{agent}:{eid}, one per ARGV[3..n+1]
-- ARGV[1] cutoff_ms (acquired strictly before it)   ARGV[2] future_cutoff_ms (strictly after it)
-- ARGV[3..n+1] execution ids
-- returns a flat list of execution ids (possibly empty)
local out = {}
local cutoff = tonumber(ARGV[1])
local future = tonumber(ARGV[2])
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score then
    local at = tonumber(score)
    if redis.call('EXISTS', KEYS[i - 1]) == 0 or at < cutoff or at > future then
      table.insert(out, ARGV[i])
    end
  end
end
return out
