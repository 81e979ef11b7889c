-- A call to an agent got an answer: forget the failures counted against its closed circuit.
-- Only the probe closes an open circuit, so a late answer to a call made before it opened
-- changes nothing.
-- KEYS[1] circuit:{agent}   HASH (absent = closed, no failures)
-- ARGV none
-- returns 0 CLEAN (nothing was counted), 1 RESET (failures forgotten), 2 NOT_CLOSED
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return 0
end
if state ~= 'closed' then
  return 2
end
redis.call('DEL', KEYS[1])
return 1
