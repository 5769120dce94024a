-- USES:
-- Is this message still the newest accepted for its `last` key? (Always true for other policies.)
local function isNewest(route)
  return route.policy ~= 'last' or redis.call('HGET', K['L' .. route.level .. ':last:newest'], route.key) == route.id
end
