-- USES: groupKey
-- Is this message still the newest accepted for its `last` key (in its group)? (Always true for other policies.)
local function isNewest(route)
  if route.policy ~= 'last' then return true end
  local newest = route.group and groupKey(route.level, route.group, 'last:newest') or K['L' .. route.level .. ':last:newest']
  return redis.call('HGET', newest, route.key) == route.id
end
