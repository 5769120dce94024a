#!lua flags=allow-oom
-- Moves retries that are due (on Redis's clock) from the delayed set back into their queues,
-- at the back. A `last` retry whose key got a newer message meanwhile is dropped.
-- KEYS[1..19]: the common layout   KEYS[20] {p}:delayed   KEYS[21] {p}:dead
-- ARGV[1] most jobs moved in one call   ARGV[2] dead-letter cap (for an unreadable payload)
-- Output: number of jobs moved
local now = redisNowMs()
local due = redis.call('ZRANGEBYSCORE', KEYS[20], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, payload in ipairs(due) do
  redis.call('ZREM', KEYS[20], payload)
  local route = routeOf(payload)
  if not route then
    buryUnreadable(KEYS[21], payload, now, tonumber(ARGV[2]))
  else
    countDelayed(route.level, -1)
    if requeue(payload, route, false) then moved = moved + 1 end
  end
end
return moved
