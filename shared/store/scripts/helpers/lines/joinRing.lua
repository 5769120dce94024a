-- USES:
-- A named group that has just got something in line joins its level's ring at the back: its
-- turn stamp is the level's next turn number (a counter, so no clock can misplace it); a group
-- already there keeps its place.
local function joinRing(level, group)
  local ring = K['L' .. level .. ':groups']
  if redis.call('ZSCORE', ring, group) then return end
  redis.call('ZADD', ring, redis.call('HINCRBY', K.sched, 'seq:L' .. level, 1), group)
end
