-- Record that an agent answered: its outage (if any) is over. The fence stays: only a clean
-- registry pass lifts it.
-- KEYS[1] agent:{agent}:health   HASH unreachable_since_ms, lost_at_ms
-- returns {code, unreachable_since_ms}: code 0 WAS_REACHABLE ({0, 0}), 1 CAME_BACK
local since = redis.call('HGET', KEYS[1], 'unreachable_since_ms')
if not since then
  return {0, 0}
end
redis.call('HDEL', KEYS[1], 'unreachable_since_ms')
return {1, tonumber(since)}
