-- Count one failed call to an agent; open its circuit when the threshold and the quorum agree.
-- KEYS[1] circuit:{agent}          HASH (absent = closed, no failures)
-- KEYS[2] circuit:{agent}:events   LIST of JSON events, newest first, capped
-- ARGV[1] replica id   ARGV[2] now_ms   ARGV[3] failure_threshold   ARGV[4] quorum window ms
-- ARGV[5] live replicas   ARGV[6] first probe at (ms, if it opens)   ARGV[7] reason
-- ARGV[8] events cap
-- returns 0 COUNTED (still closed), 1 OPENED, 2 HELD_BY_QUORUM (at the threshold, but only
--         one replica saw failures while others are live), 3 NOT_CLOSED (nothing changed)
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'closed' then
  return 3
end
local now = tonumber(ARGV[2])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'state', 'closed', 'fail_at:' .. ARGV[1], ARGV[2])
-- Forget replicas whose last failure fell out of the window; count the others.
local fields = redis.call('HGETALL', KEYS[1])
local failing = 0
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 8) == 'fail_at:' then
    if tonumber(fields[i + 1]) < now - tonumber(ARGV[4]) then
      redis.call('HDEL', KEYS[1], fields[i])
    else
      failing = failing + 1
    end
  end
end
if failures < tonumber(ARGV[3]) then
  return 0
end
if tonumber(ARGV[5]) > 1 and failing < 2 then
  return 2
end
redis.call('HSET', KEYS[1], 'state', 'open', 'failed_probes', 0, 'opened_at_ms', ARGV[2],
  'next_probe_at_ms', ARGV[6], 'changed_at_ms', ARGV[2], 'reason', ARGV[7])
redis.call('LPUSH', KEYS[2], cjson.encode({at_ms = ARGV[2], kind = 'opened', from = 'closed',
  to = 'open', reason = ARGV[7], by = ARGV[1]}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[8]) - 1)
return 1
