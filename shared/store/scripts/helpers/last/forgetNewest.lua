-- USES:
-- The message's key has nothing newer alive once this message is finished for good.
local function forgetNewest(route)
  if route.policy == 'last' and redis.call('HGET', K['L' .. route.level .. ':last:newest'], route.key) == route.id then
    redis.call('HDEL', K['L' .. route.level .. ':last:newest'], route.key)
  end
end
