-- USES: queueKey
-- Is this message still the newest accepted for its `last` key (in its group)? (Always true for other policies.)
local function isNewest(route)
  if route.policy ~= 'last' then return true end
  local newest = queueKey(route.level, route.group, 'last:newest')
  return redis.call('HGET', newest, route.key) == route.id
end
