-- Consume an agent's reconcile request: read it and clear it, so it is acted on once.
-- KEYS[1] agent:{agent}:cursor   HASH fields reconcile_requested_at_ms, reconcile_reason
-- returns {0} NONE, or {1, requested_at_ms, reason} TAKEN
local got = redis.call('HMGET', KEYS[1], 'reconcile_requested_at_ms', 'reconcile_reason')
if not got[1] then
  return {0}
end
redis.call('HDEL', KEYS[1], 'reconcile_requested_at_ms', 'reconcile_reason')
return {1, tonumber(got[1]), got[2] or ''}
