-- USES: count forgetDead setWhere whereDead
-- Appends to the capped dead-letter list; the oldest entries beyond the cap are trimmed and
-- counted, and leave the lookup index with them. `id`: the job's (nil for an unreadable payload).
-- level nil: a payload of no known level (counted as dead:unreadable).
local function bury(deadKey, entry, level, deadMax, id)
  redis.call('LPUSH', deadKey, entry)
  if id then setWhere(id, whereDead()) end
  if level then count(level, 'dead') else redis.call('HINCRBY', K.stats, 'dead:unreadable', 1) end
  local length = redis.call('LLEN', deadKey)
  if length > deadMax then
    for _, old in ipairs(redis.call('LRANGE', deadKey, deadMax, -1)) do forgetDead(old) end
    redis.call('LTRIM', deadKey, 0, deadMax - 1)
    redis.call('HINCRBY', K.stats, 'dead:trimmed', length - deadMax)
  end
end
