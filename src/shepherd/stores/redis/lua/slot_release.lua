-- Release-if-matches: remove named slot members of one agent and their hashes; a member that is
-- not held changes nothing.
-- KEYS[1] slots:{agent}   KEYS[1+i] slot:{agent}:{eid_i}
-- ARGV[i] the i-th execution id
-- returns one code per execution: 0 NOT_HELD (nothing changed), 1 RELEASED
local codes = {}
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('DEL', KEYS[1 + i])
    codes[i] = 1
  else
    codes[i] = 0
  end
end
return codes
