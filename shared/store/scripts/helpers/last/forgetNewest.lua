-- USES: queueKey
-- The message's key has nothing newer alive once this message is finished for good.
local function forgetNewest(route)
  if route.policy ~= 'last' then return end
  local newest = queueKey(route.level, route.group, 'last:newest')
  if redis.call('HGET', newest, route.key) == route.id then redis.call('HDEL', newest, route.key) end
end
