-- USES:
local function claimable(level)
  return redis.call('LLEN', K['L' .. level .. ':execute']) > 0 or redis.call('LLEN', K['L' .. level .. ':last:order']) > 0
    or redis.call('LLEN', K['L' .. level .. ':discard']) > 0
end
