-- USES:
-- Messages of a level waiting for their time (a delay or a retry) in the delayed set, which
-- holds both levels: kept as a count in {p}:stats ("L<level>:delayed") by every script that
-- adds to the set or takes from it, so the backlog rules see them without a scan.
local function countDelayed(level, n)
  redis.call('HINCRBY', K.stats, 'L' .. level .. ':delayed', n)
end
