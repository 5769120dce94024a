-- USES:
-- A named group that has just got something in line joins its level's ring, at the back (its
-- turn stamp is now, in Redis µs; a group already there keeps its place).
local function joinRing(level, group)
  local t = redis.call('TIME')
  redis.call('ZADD', K['L' .. level .. ':groups'], 'NX', t[1] * 1000000 + t[2], group)
end
