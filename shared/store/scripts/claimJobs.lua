#!lua flags=allow-oom
-- Claims up to n jobs for one worker by smooth weighted round robin between the levels
-- (state kept here, so the share holds across all workers) and turns between the three
-- queues of a level. Each job gets a new run token (its fencing token) and is recorded in the
-- worker's hash under it; the worker's lease is renewed. First delivers what enqueue already
-- handed to this worker (its inbox). A worker that gets nothing is about to block: it is
-- registered idle, so enqueue can hand it the next job.
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 L2:active runs jobs paused sched workers worker inbox idle:L1 idle:L2
-- USES: backlog claimable count forgetJob forgetNewest jobId leaseHeld newToken redisClock routeOf runningField setWhere wake whereRunning
-- ARGV[1] worker id  ARGV[2] lease (ms)  ARGV[3] n  ARGV[4] most level-2 jobs allowed
-- ARGV[5] weight L1  ARGV[6] weight L2  ARGV[7] strict ('1'|'0')  ARGV[8] level-2 capacity
-- ARGV[9] how long an idle registration stays fresh (ms; longer than the worker's block timeout)
-- ARGV[10] fraction of capacity under which level 2 reopens (0.6)
-- ARGV[11] '1' when the worker takes level 1, '0' when it is dedicated to level 2 (its
--          level-2 room is 0 when it does not take level 2)
-- Output: CODE.lost (-1) when the worker's lease has run out (it must not start anything);
--         else { work left (1: level 1, 2: level 2, 3: both, 0: none), token, payload, token,
--         payload, … in the order they were chosen }
local worker, leaseMs, n, level2Room = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local weight = { tonumber(ARGV[5]), tonumber(ARGV[6]) }
local strict = ARGV[7] == '1'
local capacity = tonumber(ARGV[8])
local now, clockUs = redisClock()
-- The levels paused by an operator, read once; the levels this claim may take: not paused,
-- and taken by this worker.
local flags = redis.call('HMGET', K.paused, 'L1', 'L2')
local isPaused = { flags[1] ~= false, flags[2] ~= false }
local open = { ARGV[11] ~= '0' and not isPaused[1], level2Room > 0 and not isPaused[2] }

if not leaseHeld(K.workers, worker, now) then return CODE.lost end
redis.call('ZADD', K.workers, now + leaseMs, worker)

local state = redis.call('HMGET', K.sched, 'cw1', 'cw2', 'turn1', 'turn2')
local credit = { tonumber(state[1]) or 0, tonumber(state[2]) or 0 }
local turn = { tonumber(state[3]) or 0, tonumber(state[4]) or 0 }

-- Pops the next job of a level, the three queues taking turns; nil when the level has none.
local function popLevel(level)
  for i = 0, 2 do
    local q = (turn[level] + i) % 3
    if q == 0 then
      local payload = redis.call('RPOP', K['L' .. level .. ':execute'])
      if payload then turn[level] = 1 return payload, nil end
    elseif q == 1 then
      local key = redis.call('RPOP', K['L' .. level .. ':last:order'])
      while key do
        if redis.call('HEXISTS', K.running, runningField(level, key)) == 0 then
          local payload = redis.call('HGET', K['L' .. level .. ':last'], key)
          if payload then
            redis.call('HDEL', K['L' .. level .. ':last'], key)
            turn[level] = 2
            return payload, key
          end
        end -- a running key stays parked until its run ends (releaseKey)
        key = redis.call('RPOP', K['L' .. level .. ':last:order'])
      end
    else
      local payload = redis.call('RPOP', K['L' .. level .. ':discard'])
      if payload then turn[level] = 0 return payload, nil end
    end
  end
  return nil
end

-- A message older than its ttl is dropped here, on Redis's clock. Only payloads that carry a
-- ttl are read past their id.
local function expired(payload)
  if not string.find(payload, '"ttl":', 1, true) then return false end
  local route = routeOf(payload)
  if not route or not route.ttl or route.at + route.ttl >= now then return false end
  count(route.level, 'dropped')
  forgetNewest(route)
  forgetJob(route.id)
  return true
end

-- Handed jobs are already recorded in the worker's hash (and their `last` keys marked running).
-- A handed level-2 job uses the room for level 2 like a claimed one (the worker counted it in neither).
local out = {}
local level2Taken = 0
local handed = redis.call('LRANGE', K.inbox, 0, -1)
if #handed > 0 then
  redis.call('DEL', K.inbox)
  for i = #handed, 1, -1 do -- oldest first
    local token, payload = string.match(handed[i], '^(%d+):(.*)$')
    out[#out + 1] = token
    out[#out + 1] = payload
    if string.match(payload, '"level":(%d)') == '2' then level2Taken = level2Taken + 1 end
  end
end
local drops = 0
while #out < 2 * n and drops < 1000 do
  local has1 = open[1] and claimable(1)
  local has2 = open[2] and level2Taken < level2Room and claimable(2)
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
  if payload and expired(payload) then
    drops = drops + 1
  elseif payload then
    local token = newToken(clockUs)
    redis.call('HSET', K.worker, token, payload)
    if key then redis.call('HSET', K.running, runningField(level, key), token) end
    setWhere(jobId(payload), whereRunning(now, token, worker))
    if level == 2 then level2Taken = level2Taken + 1 end
    out[#out + 1] = token
    out[#out + 1] = payload
  end
end

if #out == 0 then
  for level = 1, 2 do
    local idle = K['idle:L' .. level]
    redis.call('ZREMRANGEBYSCORE', idle, '-inf', now) -- registrations of workers that stopped renewing
    if (level == 1 and ARGV[11] ~= '0') or (level == 2 and level2Room > 0) then
      redis.call('ZADD', idle, now + tonumber(ARGV[9]), worker)
    else
      redis.call('ZREM', idle, worker)
    end
  end
else
  redis.call('ZREM', K['idle:L1'], worker)
  redis.call('ZREM', K['idle:L2'], worker)
end
redis.call('HSET', K.sched, 'cw1', credit[1], 'cw2', credit[2], 'turn1', turn[1], 'turn2', turn[2])
if redis.call('GET', K['L2:active']) == '0' and backlog(2) < capacity * tonumber(ARGV[10]) then
  redis.call('SET', K['L2:active'], '1')
end
-- Pass the baton: work left over wakes another idle worker.
local left = 0
if not isPaused[1] and claimable(1) then
  wake(1)
  left = 1
end
if not isPaused[2] and claimable(2) then
  wake(2)
  left = left + 2
end
table.insert(out, 1, left)
return out
