#!lua
-- Puts one async message in line, applying the level-2 switch and the policy in one step.
-- When a worker is blocked idle and nothing of the message's level waits, the message is
-- handed straight to that worker instead (see handOff below). A message with a delay waits in
-- the delayed set, as a retry does, until it is due.
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 L2:active runs jobs paused idle:L1 idle:L2 delayed L1:groups L2:groups sched
-- USES: atStamp backlog carryLinks claimable count countDelayed forgetJob jobId joinRing jsonString jsonStringEnd keepHashtable newToken paused queueKey redisClock redisNowMs runningField setWhere wake whereDue whereRunning whereWaiting
-- ARGV[1] '1' when the id is the caller's (queue_detail.id), '' for one the gateway made
--         (unique by construction: such a job waiting in a list gets no index entry, below)
-- ARGV[2] payload JSON (format/job.ts), its enqueue time written as "at":0 (stamped here): the
--         job's id, level, policy and key are read from it, the one place they are written
-- ARGV[3] level-2 capacity   ARGV[4] discard threshold
-- ARGV[5] key prefix with its hash tag, "{p}" (to name the chosen worker's keys)
-- ARGV[6] fraction of capacity above which level 2 refuses (0.8)   ARGV[7] ... under which it reopens (0.6)
-- ARGV[8] 'handoff': give the message to an idle worker of this partition (one partition);
--         'report': answer queuedWakeIdle instead when an idle worker waits (several partitions:
--         idle workers block on the deployment's wake keys, which this script cannot reach)
-- ARGV[9] delay (ms): run no earlier than this from now (0: at once)
-- ARGV[10] '1' when the payload carries a trace context (tracing on at the gateway): a `last`
--          message it supersedes passes its context on as a link (format/carryLinks.lua)
-- Output: a code of replies.ts: queued, replaced (a waiting `last` message with that key was
--         overwritten), refused (level 2 inactive), dropped (discard under load), queuedWakeIdle
--         (queued, and an idle worker should be woken: mode 'report'), duplicate (a job with
--         this id is known: nothing queued)
-- The routing fields open the payload in a fixed order (routeOf); the gateway has just written
-- them, so they are read here without a full route parse: the id, level and policy at fixed
-- places, and for `last` the key's literal right after the policy (only a literal with an
-- escape in it is decoded). So the copies of a key in the hash, the order list and {p}:running
-- are the same bytes as the payload's, as every later script reads them.
local payload = ARGV[2]
local id, level, afterLevel = string.match(payload, '^{"id":"([%w_-]+)","at":0,"level":([12])()')
if not id then return redis.error_reply('ERR payload does not open with "id", "at":0 and "level"') end
level = tonumber(level)
local policy = 'execute'
local named, afterPolicy = string.match(payload, '^,"policy":"(%a+)"()', afterLevel)
if named then policy = named end
if policy ~= 'execute' and policy ~= 'last' and policy ~= 'discard' then return redis.error_reply('ERR payload has an unknown "policy"') end
local key
local afterKey = afterPolicy or afterLevel
if policy == 'last' then
  local close = string.sub(payload, afterPolicy, afterPolicy + 6) == ',"key":' and jsonStringEnd(payload, afterPolicy + 7)
  key = close and jsonString(payload, afterPolicy + 7, close)
  if not key then return redis.error_reply('ERR payload has no readable "key" after "policy":"last"') end
  afterKey = close + 1
end
-- A named group's message waits in the group's own queues (docs/design.md, Tenants).
local group = string.match(payload, '^,"group":"([%w_.:@/+=-]+)"', afterKey)
local lastHash, lastOrder, lastNewest
if policy == 'last' then
  lastHash, lastOrder, lastNewest = queueKey(level, group, 'last'), queueKey(level, group, 'last:order'), queueKey(level, group, 'last:newest')
end

-- A caller's id still known (the call sent again: a retry after an unknown outcome) queues
-- nothing twice. A gateway's own ids are unique: they need no look-up.
if ARGV[1] == '1' and redis.call('HEXISTS', K.jobs, id) == 1 then return CODE.duplicate end
local capacity, discardAt = tonumber(ARGV[3]), tonumber(ARGV[4])
local tag = ARGV[5]
local offAbove, onBelow = capacity * tonumber(ARGV[6]), capacity * tonumber(ARGV[7])
local now = redisNowMs()
local delayMs = tonumber(ARGV[9]) or 0

-- The enqueue time is Redis's, so a gateway's clock cannot age (or rejuvenate) a message.
local atEnd = #id + 15 -- '{"id":"' .. id .. '","at":0' ends here
payload = string.sub(payload, 1, atEnd - 1) .. atStamp(now) .. string.sub(payload, atEnd + 1)

-- An idle worker is blocked in BLPOP on its inbox. Recording the job in that worker's hash
-- under a new run token (as a claim would) and pushing token and payload to its inbox saves
-- the worker the claim round trip after it wakes. Only when nothing of this level waits: the
-- job would be the next one chosen anyway, so order within a queue and the weighted shares
-- are unchanged. Only to a fresh registration (renewed by every empty claim, at least once a
-- second while the worker blocks): a worker killed while idle can take at most one job with
-- it, and that job comes back after its lease like any job of a dead worker.
local handOffMode = ARGV[8] == 'handoff'
local idleWaiting = false
local function handOff(runningKey)
  -- A grouped message always goes through a claim, which applies its group's cap and rate.
  if delayMs > 0 or group then return false end
  -- Under load no worker is idle: that is looked at first, the pause only when one is.
  local candidates = redis.call('ZRANGEBYSCORE', K['idle:L' .. level], now, '+inf', 'LIMIT', 0, 1)
  if #candidates == 0 or paused(level) then return false end
  if not handOffMode then
    idleWaiting = true
    return false
  end
  if claimable(level) then return false end
  local worker = candidates[1]
  redis.call('ZREM', K['idle:L1'], worker)
  redis.call('ZREM', K['idle:L2'], worker)
  local jobs = tag .. ':worker:' .. worker
  local _, clockUs = redisClock() -- read here, not per call: only a hand-off hands out a token
  local token = newToken(clockUs)
  redis.call('HSET', jobs, token, payload)
  if runningKey then redis.call('HSET', K.running, runningField(level, runningKey), token) end
  redis.call('LPUSH', jobs .. ':inbox', token .. ':' .. payload)
  setWhere(id, whereRunning(now, token, worker))
  return true
end

-- The backlog is read only where a rule needs it (level 2, discard): most level-1 messages skip it.
local waiting = (level == 2 or policy == 'discard') and backlog(level) or 0
if level == 2 and redis.call('GET', K['L2:active']) == '0' then
  if waiting < onBelow then
    redis.call('SET', K['L2:active'], '1')
  else
    count(2, 'refused')
    return CODE.refused
  end
end

if policy == 'discard' and waiting >= discardAt then
  count(level, 'dropped')
  return CODE.dropped
end

local result, queued = CODE.queued, true
local traced = ARGV[10] == '1'
if traced and policy == 'last' and redis.call('HEXISTS', lastHash, key) == 0 then
  -- The key's newest message may wait in the delayed set (its delay, or a retry): this message
  -- supersedes it too (promotion drops it as superseded), so it carries that one's context.
  local newest = redis.call('HGET', lastNewest, key)
  local due = newest and string.match(redis.call('HGET', K.jobs, newest) or '', '^t(%d+)$')
  if due then
    for _, held in ipairs(redis.call('ZRANGEBYSCORE', K.delayed, due, due)) do
      if jobId(held) == newest then
        payload = carryLinks(payload, held)
        break
      end
    end
  end
end
if delayMs > 0 then
  -- Held like a retry; a waiting `last` message of its key is replaced by it (it is newer).
  if policy == 'last' then
    if redis.call('HEXISTS', lastHash, key) == 1 then
      if traced then payload = carryLinks(payload, redis.call('HGET', lastHash, key)) end
      forgetJob(redis.call('HGET', lastNewest, key))
      redis.call('HDEL', lastHash, key)
      redis.call('LREM', lastOrder, 1, key)
      if group then count(level, 'grouped', -1) end
      result = CODE.replaced
    end
    redis.call('HSET', lastNewest, key, id)
  end
  redis.call('ZADD', K.delayed, now + delayMs, payload)
  countDelayed(level, 1)
  setWhere(id, whereDue(now + delayMs))
  queued = false
elseif policy == 'last' then
  if redis.call('HEXISTS', lastHash, key) == 1 then
    -- The message waiting for this key is its newest so far: it is overwritten, and forgotten.
    if traced then payload = carryLinks(payload, redis.call('HGET', lastHash, key)) end
    forgetJob(redis.call('HGET', lastNewest, key))
    redis.call('HSET', lastNewest, key, id)
    redis.call('HSET', lastHash, key, payload)
    setWhere(id, whereWaiting(level, policy, key, group))
    result = CODE.replaced -- keeps the key's place in line
  elseif redis.call('HEXISTS', K.running, runningField(level, key, group)) == 1 then
    redis.call('HSET', lastNewest, key, id)
    redis.call('HSET', lastHash, key, payload) -- the key is running; its release puts it in line
    if group then count(level, 'grouped') end
    setWhere(id, whereWaiting(level, policy, key, group))
    queued = false
  else
    redis.call('HSET', lastNewest, key, id)
    if not handOff(key) then
      redis.call('HSET', lastHash, key, payload)
      redis.call('LPUSH', lastOrder, key)
      if group then
        count(level, 'grouped')
        joinRing(level, group, 1)
      end
      setWhere(id, whereWaiting(level, policy, key, group))
    else
      queued = false
    end
  end
elseif handOff(nil) then
  queued = false
else
  local list = queueKey(level, group, policy)
  -- The first message of an empty list also sees that the lookup index is a hashtable (once
  -- set, a no-op): the runs its claims will write are then fast from the start.
  if redis.call('LPUSH', list, payload) == 1 then
    keepHashtable()
    if group then joinRing(level, group, policy == 'discard' and 2 or 0) end
  end
  if group then count(level, 'grouped') end
  -- A message waiting in a list is found by reading the lists (lookupJob, deleteJob): only a
  -- caller's id needs its entry, for the `duplicate` check above. The gateway's ids are unique,
  -- and an index entry would cost more memory than the rest of the job's place in the list.
  if ARGV[1] == '1' then setWhere(id, whereWaiting(level, policy, nil, group)) end
end

if result == CODE.queued then
  count(level, 'queued')
  if queued and idleWaiting then result = CODE.queuedWakeIdle end
  if level == 2 and waiting + 1 > offAbove then redis.call('SET', K['L2:active'], '0') end
else
  count(level, 'replaced')
end
if queued then wake(level) end
return result
