-- Extend a lease, only for its owner.
-- KEYS[1] lease:{name}
-- ARGV[1] owner token   ARGV[2] ttl_ms
-- returns 0 NOT_OWNER (expired or held by another), 1 RENEWED
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
