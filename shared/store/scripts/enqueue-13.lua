-- Puts one async message in line, applying the level-2 switch and the policy in one step.
-- KEYS[1..13]: the common layout (includes/queues.lua)
-- ARGV[1] level (1|2)   ARGV[2] policy (execute|last|discard)   ARGV[3] coalescing key (last)
-- ARGV[4] payload JSON  ARGV[5] level-2 capacity                  ARGV[6] discard threshold
-- Output: 1 queued, 2 replaced (a waiting `last` message with that key was overwritten),
--         3 refused (level 2 inactive), 4 dropped (discard under load)
local level = tonumber(ARGV[1])
local policy, key, payload = ARGV[2], ARGV[3], ARGV[4]
local capacity, discardAt = tonumber(ARGV[5]), tonumber(ARGV[6])

-- The backlog is read only where a rule needs it (level 2, discard): most level-1 messages skip it.
local waiting = (level == 2 or policy == 'discard') and backlog(level) or 0
if level == 2 and redis.call('GET', KEYS[13]) == '0' then
  if waiting < capacity * 0.6 then
    redis.call('SET', KEYS[13], '1')
  else
    count(2, 'refused')
    return 3
  end
end

if policy == 'discard' and waiting >= discardAt then
  count(level, 'dropped')
  return 4
end

local result = 1
if policy == 'last' then
  if redis.call('HSET', qkey(level, 3), key, payload) == 0 then
    result = 2 -- keeps the key's place in line
  elseif redis.call('HEXISTS', KEYS[9], runningField(level, key)) == 0 then
    redis.call('LPUSH', qkey(level, 4), key)
  end -- else: the key is running; its release puts it in line
else
  redis.call('LPUSH', qkey(level, policy == 'discard' and 2 or 1), payload)
end

if result == 1 then
  count(level, 'queued')
  if level == 2 and waiting + 1 > capacity * 0.8 then redis.call('SET', KEYS[13], '0') end
else
  count(level, 'replaced')
end
wake(level)
return result
