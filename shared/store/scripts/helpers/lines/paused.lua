-- USES:
local function paused(level)
  return redis.call('HEXISTS', K.paused, 'L' .. level) == 1
end
