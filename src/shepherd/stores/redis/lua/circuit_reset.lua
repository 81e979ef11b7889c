-- An operator closes an agent's circuit, whatever its state, and forgets its failures.
-- KEYS[1] circuit:{agent}          HASH
-- KEYS[2] circuit:{agent}:events   LIST of JSON events, newest first, capped
-- ARGV[1] actor   ARGV[2] now_ms   ARGV[3] reason   ARGV[4] events cap
-- returns 0 NOTHING (no state stored), 1 FORGOTTEN (closed; its failures forgotten, no event),
--         2 CLOSED (it was open, half-open or dormant; event recorded)
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return 0
end
redis.call('DEL', KEYS[1])
if state == 'closed' then
  return 1
end
redis.call('LPUSH', KEYS[2], cjson.encode({at_ms = ARGV[2], kind = 'reset', from = state,
  to = 'closed', reason = ARGV[3], by = ARGV[1]}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
return 2
