-- Claim the one half-open probe of an agent's circuit for this replica, fleet-wide.
-- KEYS[1] circuit:{agent}          HASH
-- KEYS[2] circuit:{agent}:events   LIST of JSON events, newest first, capped
-- ARGV[1] replica id   ARGV[2] now_ms   ARGV[3] probe lease until (ms)   ARGV[4] reason
-- ARGV[5] events cap
-- returns 0 CLOSED (nothing to probe), 1 WON (this replica probes now), 2 NOT_DUE (cooldown
--         not over), 3 HELD (another replica's probe is in flight)
local now = tonumber(ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state')
local from = state
if state == 'half_open' then
  if tonumber(redis.call('HGET', KEYS[1], 'probe_until_ms') or 0) > now then
    return 3
  end
  -- The owner went silent past its lease: the probe is anyone's again.
  from = redis.call('HGET', KEYS[1], 'probe_from') or 'open'
elseif state == 'open' or state == 'dormant' then
  if tonumber(redis.call('HGET', KEYS[1], 'next_probe_at_ms') or 0) > now then
    return 2
  end
else
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_owner', ARGV[1], 'probe_until_ms',
  ARGV[3], 'probe_from', from, 'changed_at_ms', ARGV[2], 'reason', ARGV[4])
redis.call('LPUSH', KEYS[2], cjson.encode({at_ms = ARGV[2], kind = 'probing', from = state,
  to = 'half_open', reason = ARGV[4], by = ARGV[1]}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
return 1
