-- USES:
-- Whether a level has anything in line: its own queues, or a named group in its ring (whose
-- cap or rate may still hold it back: the claim tells). Also returns whether the ring has a
-- member. `noRing`: the caller knows the ring is empty (it is not asked).
local function claimable(level, noRing)
  local ringed = not noRing and redis.call('ZCARD', K['L' .. level .. ':groups']) > 0
  return ringed or redis.call('LLEN', K['L' .. level .. ':execute']) > 0 or redis.call('LLEN', K['L' .. level .. ':last:order']) > 0
    or redis.call('LLEN', K['L' .. level .. ':discard']) > 0, ringed
end
