-- Apply the outcome of this replica's probe: close the circuit, or send it back open / dormant
-- with its next probe time. Only the replica that still owns the probe may do so.
-- KEYS[1] circuit:{agent}          HASH
-- KEYS[2] circuit:{agent}:events   LIST of JSON events, newest first, capped
-- ARGV[1] replica id   ARGV[2] now_ms   ARGV[3] new state (closed | open | dormant)
-- ARGV[4] failed_probes   ARGV[5] next probe at (ms; ignored when closing)   ARGV[6] kind
-- ARGV[7] reason   ARGV[8] events cap
-- returns 0 NOT_OWNER (the probe was reset or retaken: nothing changed), 1 APPLIED
if redis.call('HGET', KEYS[1], 'state') ~= 'half_open'
    or redis.call('HGET', KEYS[1], 'probe_owner') ~= ARGV[1] then
  return 0
end
if ARGV[3] == 'closed' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HDEL', KEYS[1], 'probe_owner', 'probe_until_ms', 'probe_from')
  redis.call('HSET', KEYS[1], 'state', ARGV[3], 'failed_probes', ARGV[4], 'next_probe_at_ms',
    ARGV[5], 'changed_at_ms', ARGV[2], 'reason', ARGV[7])
end
redis.call('LPUSH', KEYS[2], cjson.encode({at_ms = ARGV[2], kind = ARGV[6], from = 'half_open',
  to = ARGV[3], reason = ARGV[7], by = ARGV[1]}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[8]) - 1)
return 1
