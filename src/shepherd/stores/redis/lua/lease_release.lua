-- Give a lease back, only for its owner.
-- KEYS[1] lease:{name}
-- ARGV[1] owner token
-- returns 0 NOT_OWNER, 1 RELEASED
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
