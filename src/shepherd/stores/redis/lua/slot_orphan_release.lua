-- Delete a slot hash whose member is gone (invariant S-04). No script writes one without the
-- other, so such a hash is always garbage; one without a TTL would otherwise live forever.
-- KEYS[1] slots:{agent}   KEYS[2] slot:{agent}:{eid}
-- ARGV[1] execution id
-- returns 0 NOT_ORPHAN (its member is there, or the hash is gone already), 1 REMOVED
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
return redis.call('DEL', KEYS[2])
