-- Acquire capacity slots of one agent for executions, in order, on a Redis whose slots are known
-- good. One call for a dispatcher pass: the check and the add of every slot are one script.
-- KEYS[1] slots:{agent}        ZSET member = execution id, score = acquired_at_ms
-- KEYS[2] epoch                run_id of the server the slots were rebuilt on (core.epoch)
-- KEYS[2+i] slot:{agent}:{eid} HASH acquired_at_ms, timeout_s, holder; TTL = ttl_s
-- ARGV[1] max_parallel   ARGV[2] now_ms   ARGV[3] holder   ARGV[4] the epoch the caller verified
-- ARGV[5+3(i-1)], +1, +2: execution id, timeout_s, ttl_s of the i-th execution
-- returns one code per execution: 0 FULL, 1 ACQUIRED, 2 ALREADY_HELD (nothing refreshed),
--         3 STALE_EPOCH (Redis lost or changed its data since the caller verified; nothing done)
local n = #KEYS - 2
local codes = {}
if redis.call('GET', KEYS[2]) ~= ARGV[4] then
  for i = 1, n do codes[i] = 3 end
  return codes
end
local max_parallel = tonumber(ARGV[1])
for i = 1, n do
  local at = 5 + 3 * (i - 1)
  local eid = ARGV[at]
  if redis.call('ZSCORE', KEYS[1], eid) then
    codes[i] = 2
  elseif redis.call('ZCARD', KEYS[1]) >= max_parallel then
    codes[i] = 0
  else
    redis.call('ZADD', KEYS[1], ARGV[2], eid)
    redis.call('HSET', KEYS[2 + i], 'acquired_at_ms', ARGV[2], 'timeout_s', ARGV[at + 1],
               'holder', ARGV[3])
    redis.call('EXPIRE', KEYS[2 + i], ARGV[at + 2])
    codes[i] = 1
  end
end
return codes
