-- USES: groupKey
-- The message's key has nothing newer alive once this message is finished for good.
local function forgetNewest(route)
  if route.policy ~= 'last' then return end
  local newest = route.group and groupKey(route.level, route.group, 'last:newest') or K['L' .. route.level .. ':last:newest']
  if redis.call('HGET', newest, route.key) == route.id then redis.call('HDEL', newest, route.key) end
end
