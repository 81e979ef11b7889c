-- Put back the slot of an execution that runs without one (Redis lost it). No capacity check:
-- the work runs whatever Redis says, and an agent over its max_parallel simply takes no new work.
-- KEYS[1] slots:{agent}   KEYS[2] slot:{agent}:{eid}
-- ARGV[1] execution id   ARGV[2] acquired_at_ms   ARGV[3] timeout_s   ARGV[4] ttl_s
-- ARGV[5] holder
-- returns 0 PRESENT (already held, nothing changed), 1 RESTORED
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], 'acquired_at_ms', ARGV[2], 'timeout_s', ARGV[3], 'holder', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
