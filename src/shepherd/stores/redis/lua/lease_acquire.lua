-- Take a lease if nobody holds it.
-- KEYS[1] lease:{name}
-- ARGV[1] owner token   ARGV[2] ttl_ms
-- returns 0 HELD_BY_OTHER, 1 ACQUIRED, 2 ALREADY_OURS (TTL refreshed)
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 2
end
if current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
