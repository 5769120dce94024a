-- Moves retries that are due from the delayed set back into their queues (at the back).
-- A `last` retry whose key got a newer message meanwhile is dropped.
-- KEYS[1..13]: the common layout   KEYS[14] {p}:delayed
-- ARGV[1] now (ms)  ARGV[2] most jobs moved in one call
-- Output: number of jobs moved
local due = redis.call('ZRANGEBYSCORE', KEYS[14], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, payload in ipairs(due) do
  redis.call('ZREM', KEYS[14], payload)
  local level, policy, key = routeOf(payload)
  if requeue(payload, level, policy, key, false) then moved = moved + 1 end
end
return moved
