#!lua flags=allow-oom
-- Moves retries that are due (on Redis's clock) from the delayed set back into their queues,
-- at the back. A `last` retry whose key got a newer message meanwhile is dropped.
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 jobs delayed dead L1:groups L2:groups sched
-- USES: buryUnreadable countDelayed redisNowMs requeue routeOf
-- ARGV[1] most jobs moved in one call   ARGV[2] dead-letter cap (for an unreadable payload)
-- Output: number of jobs moved
local now = redisNowMs()
local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, payload in ipairs(due) do
  redis.call('ZREM', K.delayed, payload)
  local route = routeOf(payload)
  if not route then
    buryUnreadable(K.dead, payload, now, tonumber(ARGV[2]))
  else
    countDelayed(route.level, -1)
    if requeue(payload, route, false) then moved = moved + 1 end
  end
end
return moved
