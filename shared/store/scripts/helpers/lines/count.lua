-- USES:
local function count(level, what, n)
  redis.call('HINCRBY', K.stats, 'L' .. level .. ':' .. what, n or 1)
end
