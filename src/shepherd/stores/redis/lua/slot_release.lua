-- Release-if-matches: remove one named slot member and its hash; a non-holder changes nothing.
-- KEYS[1] slots:{agent}   KEYS[2] slot:{agent}:{eid}
-- ARGV[1] execution id
-- returns 0 NOT_HELD (nothing changed), 1 RELEASED
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
