-- Acquire one capacity slot of an agent for an execution, on a Redis whose slots are known good.
-- KEYS[1] slots:{agent}        ZSET member = execution id, score = acquired_at_ms
-- KEYS[2] slot:{agent}:{eid}   HASH acquired_at_ms, timeout_s, holder; TTL = ttl_s
-- KEYS[3] epoch                run_id of the server the slots were rebuilt on (core.epoch)
-- ARGV[1] execution id   ARGV[2] max_parallel   ARGV[3] now_ms   ARGV[4] timeout_s
-- ARGV[5] ttl_s          ARGV[6] holder         ARGV[7] the epoch the caller verified
-- returns 0 FULL, 1 ACQUIRED, 2 ALREADY_HELD (nothing refreshed),
--         3 STALE_EPOCH (Redis lost or changed its data since the caller verified; nothing done)
if redis.call('GET', KEYS[3]) ~= ARGV[7] then
  return 3
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 2
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], 'acquired_at_ms', ARGV[3], 'timeout_s', ARGV[4], 'holder', ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
