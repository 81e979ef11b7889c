-- Record that an agent did not answer, keeping the instant of the FIRST miss of this outage.
-- KEYS[1] agent:{agent}:health   HASH unreachable_since_ms, lost_at_ms
-- ARGV[1] now_ms
-- returns {code, unreachable_since_ms}: code 0 ALREADY (an earlier miss stands), 1 NEWLY
local fresh = redis.call('HSETNX', KEYS[1], 'unreachable_since_ms', ARGV[1])
return {fresh, tonumber(redis.call('HGET', KEYS[1], 'unreachable_since_ms'))}
