-- Puts one async message in line, applying the level-2 switch and the policy in one step.
-- When a worker is blocked idle and nothing of the message's level waits, the message is
-- handed straight to that worker instead (see handOff below).
-- KEYS[1..13]: the common layout (includes/queues.lua)
-- KEYS[14] {p}:idle:L1   KEYS[15] {p}:idle:L2 (idle workers that can take that level -> fresh until, ms)
-- ARGV[1] level (1|2)   ARGV[2] policy (execute|last|discard)   ARGV[3] coalescing key (last)
-- ARGV[4] payload JSON  ARGV[5] level-2 capacity                  ARGV[6] discard threshold
-- ARGV[7] key prefix with its hash tag, "{p}" (to name the chosen worker's keys)
-- Output: 1 queued, 2 replaced (a waiting `last` message with that key was overwritten),
--         3 refused (level 2 inactive), 4 dropped (discard under load)
local level = tonumber(ARGV[1])
local policy, key, payload = ARGV[2], ARGV[3], ARGV[4]
local capacity, discardAt = tonumber(ARGV[5]), tonumber(ARGV[6])
local tag = ARGV[7]

-- An idle worker is blocked in BLPOP on its inbox. Recording the job in that worker's hash
-- (as a claim would) and pushing the payload to its inbox saves the worker the claim round
-- trip after it wakes. Only when nothing of this level waits: the job would be the next one
-- chosen anyway, so order within a queue and the weighted shares are unchanged. Only to a
-- fresh registration (renewed by every empty claim, at least once a second while the worker
-- blocks): a worker killed while idle can take at most one job with it, in the first moments
-- after its death, and that job comes back after its lease like any job of a dead worker.
local function handOff(runningKey)
  local idle = KEYS[13 + level]
  local candidates = redis.call('ZRANGEBYSCORE', idle, redisNowMs(), '+inf', 'LIMIT', 0, 1)
  if #candidates == 0 or claimable(level) then return false end
  local worker = candidates[1]
  redis.call('ZREM', KEYS[14], worker)
  redis.call('ZREM', KEYS[15], worker)
  local jobs = tag .. ':worker:' .. worker
  redis.call('HSET', jobs, jobId(payload), payload)
  if runningKey then redis.call('HSET', KEYS[9], runningField(level, runningKey), worker) end
  redis.call('LPUSH', jobs .. ':inbox', payload)
  return true
end

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

local result, queued = 1, true
if policy == 'last' then
  local hash = qkey(level, 3)
  if redis.call('HEXISTS', hash, key) == 1 then
    redis.call('HSET', hash, key, payload)
    result = 2 -- keeps the key's place in line
  elseif redis.call('HEXISTS', KEYS[9], runningField(level, key)) == 1 then
    redis.call('HSET', hash, key, payload) -- the key is running; its release puts it in line
    queued = false
  elseif handOff(key) then
    queued = false
  else
    redis.call('HSET', hash, key, payload)
    redis.call('LPUSH', qkey(level, 4), key)
  end
elseif handOff(nil) then
  queued = false
else
  redis.call('LPUSH', qkey(level, policy == 'discard' and 2 or 1), payload)
end

if result == 1 then
  count(level, 'queued')
  if level == 2 and waiting + 1 > capacity * 0.8 then redis.call('SET', KEYS[13], '0') end
else
  count(level, 'replaced')
end
if queued then wake(level) end
return result
