-- Claims up to n jobs for one worker by smooth weighted round robin between the levels
-- (state kept here, so the share holds across all workers) and turns between the three
-- queues of a level. Records each job in the worker's hash and renews the worker's lease.
-- First delivers what enqueue already handed to this worker (its inbox). A worker that gets
-- nothing is about to block: it is registered idle, so enqueue can hand it the next job.
-- KEYS[1..13]: the common layout   KEYS[14] {p}:sched (selection state)
-- KEYS[15] {p}:worker:<id> (its claimed jobs, id -> payload)   KEYS[16] {p}:workers (id -> lease expiry ms)
-- KEYS[17] {p}:idle:L1   KEYS[18] {p}:idle:L2   KEYS[19] {p}:worker:<id>:inbox
-- ARGV[1] worker id  ARGV[2] lease expiry (ms)  ARGV[3] n  ARGV[4] most level-2 jobs allowed
-- ARGV[5] weight L1  ARGV[6] weight L2  ARGV[7] strict ('1'|'0')  ARGV[8] level-2 capacity
-- ARGV[9] how long an idle registration stays fresh (ms; longer than the worker's block timeout)
-- Output: the handed and claimed payloads, in the order they were chosen
local worker, expiry, n, level2Room = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local weight = { tonumber(ARGV[5]), tonumber(ARGV[6]) }
local strict = ARGV[7] == '1'
local capacity = tonumber(ARGV[8])

local state = redis.call('HMGET', KEYS[14], 'cw1', 'cw2', 'turn1', 'turn2')
local credit = { tonumber(state[1]) or 0, tonumber(state[2]) or 0 }
local turn = { tonumber(state[3]) or 0, tonumber(state[4]) or 0 }

-- Pops the next job of a level, the three queues taking turns; nil when the level has none.
local function popLevel(level)
  for i = 0, 2 do
    local q = (turn[level] + i) % 3
    if q == 0 then
      local payload = redis.call('RPOP', qkey(level, 1))
      if payload then turn[level] = 1 return payload, nil end
    elseif q == 1 then
      local key = redis.call('RPOP', qkey(level, 4))
      while key do
        if redis.call('HEXISTS', KEYS[9], runningField(level, key)) == 0 then
          local payload = redis.call('HGET', qkey(level, 3), key)
          if payload then
            redis.call('HDEL', qkey(level, 3), key)
            turn[level] = 2
            return payload, key
          end
        end -- a running key stays parked until its run ends (releaseKey)
        key = redis.call('RPOP', qkey(level, 4))
      end
    else
      local payload = redis.call('RPOP', qkey(level, 2))
      if payload then turn[level] = 0 return payload, nil end
    end
  end
  return nil
end

-- Handed jobs are already recorded in the worker's hash (and their `last` keys marked running).
-- A handed level-2 job uses the room for level 2 like a claimed one (the worker counted it in neither).
local out = {}
local level2Taken = 0
local handed = redis.call('LRANGE', KEYS[19], 0, -1)
if #handed > 0 then
  redis.call('DEL', KEYS[19])
  for i = #handed, 1, -1 do -- oldest first
    out[#out + 1] = handed[i]
    if string.match(handed[i], '"level":(%d)') == '2' then level2Taken = level2Taken + 1 end
  end
end
for _ = #out + 1, n do
  local has1 = claimable(1)
  local has2 = level2Taken < level2Room and claimable(2)
  local level
  if has1 and has2 then
    if strict then
      level = 1
    else
      credit[1] = credit[1] + weight[1]
      credit[2] = credit[2] + weight[2]
      level = credit[1] >= credit[2] and 1 or 2
      credit[level] = credit[level] - weight[1] - weight[2]
    end
  elseif has1 then
    level = 1
  elseif has2 then
    level = 2
  else
    break
  end
  local payload, key = popLevel(level)
  if payload then
    redis.call('HSET', KEYS[15], jobId(payload), payload)
    if key then redis.call('HSET', KEYS[9], runningField(level, key), worker) end
    if level == 2 then level2Taken = level2Taken + 1 end
    out[#out + 1] = payload
  end
end

redis.call('ZADD', KEYS[16], expiry, worker)
if #out == 0 then
  local now = redisNowMs()
  for level = 1, 2 do
    local idle = KEYS[16 + level]
    redis.call('ZREMRANGEBYSCORE', idle, '-inf', now) -- registrations of workers that stopped renewing
    if level == 1 or level2Room > 0 then
      redis.call('ZADD', idle, now + tonumber(ARGV[9]), worker)
    else
      redis.call('ZREM', idle, worker)
    end
  end
else
  redis.call('ZREM', KEYS[17], worker)
  redis.call('ZREM', KEYS[18], worker)
end
redis.call('HSET', KEYS[14], 'cw1', credit[1], 'cw2', credit[2], 'turn1', turn[1], 'turn2', turn[2])
if level2Taken > 0 and redis.call('GET', KEYS[13]) == '0' and backlog(2) < capacity * 0.6 then
  redis.call('SET', KEYS[13], '1')
end
-- Pass the baton: work left over wakes another idle worker.
if claimable(1) then wake(1) end
if claimable(2) then wake(2) end
return out
