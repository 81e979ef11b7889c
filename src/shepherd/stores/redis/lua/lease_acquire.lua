-- Take a lease if nobody holds it (SET NX PX). Holding it already does not count: a lease is
-- exclusive even between two holders that share an owner token.
-- KEYS[1] lease:{name}
-- ARGV[1] owner token   ARGV[2] ttl_ms
-- returns 0 HELD (by anyone, nothing changed), 1 ACQUIRED
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
