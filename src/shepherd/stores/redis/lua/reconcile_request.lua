-- Ask the watchdog to reconcile one agent now: keep the request on the agent's cursor hash (so
-- a cycle that misses the message still consumes it) and ring every replica's watchdog.
-- KEYS[1] agent:{agent}:cursor   HASH fields reconcile_requested_at_ms, reconcile_reason
-- ARGV[1] now_ms   ARGV[2] reason   ARGV[3] channel (watchdog:requests)   ARGV[4] agent name
-- returns 0 STORED (no watchdog listening right now), 1 DELIVERED
redis.call('HSET', KEYS[1], 'reconcile_requested_at_ms', ARGV[1], 'reconcile_reason', ARGV[2])
if redis.call('PUBLISH', ARGV[3], ARGV[4]) > 0 then
  return 1
end
return 0
