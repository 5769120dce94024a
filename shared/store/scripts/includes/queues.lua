-- Shared by every script (prepended by the loader). Every script uses the same first 13 KEYS:
--   KEYS[1..4]  {p}:L1:execute, {p}:L1:discard, {p}:L1:last, {p}:L1:last:order
--   KEYS[5..8]  the same for level 2
--   KEYS[9]     {p}:running   hash "L<level>:<key>" -> worker id, for `last` keys being run
--   KEYS[10]    {p}:stats     hash of counters "L<level>:<what>"
--   KEYS[11]    {p}:wake:L1   list, one marker at most: wakes a worker blocked in BLPOP
--   KEYS[12]    {p}:wake:L2
--   KEYS[13]    {p}:L2:active "1" active (or missing), "0" refusing
-- Script-specific keys follow from KEYS[14].

local function qkey(level, which) -- which: 1 execute, 2 discard, 3 last (hash), 4 last:order
  return KEYS[(level - 1) * 4 + which]
end

local function backlog(level)
  return redis.call('LLEN', qkey(level, 1)) + redis.call('LLEN', qkey(level, 2)) + redis.call('HLEN', qkey(level, 3))
end

local function claimable(level)
  return redis.call('LLEN', qkey(level, 1)) > 0 or redis.call('LLEN', qkey(level, 4)) > 0
    or redis.call('LLEN', qkey(level, 2)) > 0
end

local function wake(level)
  local marker = KEYS[10 + level]
  if redis.call('LLEN', marker) == 0 then redis.call('LPUSH', marker, '1') end
end

-- Redis's own clock, so that idle registrations do not depend on the clocks of gateway and worker hosts.
local function redisNowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function count(level, what, n)
  redis.call('HINCRBY', KEYS[10], 'L' .. level .. ':' .. what, n or 1)
end

local function runningField(level, key)
  return 'L' .. level .. ':' .. key
end

-- Ends a run of a `last` key. A message that arrived during the run waited outside the line
-- (its key parked); it now goes to the front, where its key would have been.
local function releaseKey(level, key)
  redis.call('HDEL', KEYS[9], runningField(level, key))
  if redis.call('HEXISTS', qkey(level, 3), key) == 1 then
    redis.call('RPUSH', qkey(level, 4), key)
    wake(level)
  end
end

local function attemptOf(payload)
  return tonumber(string.match(payload, '^{"attempt":(%d+)')) or 1
end

-- Payloads are written by the gateway with an optional leading "attempt" field, so the count
-- can change without decoding and re-encoding the caller's JSON.
local function setAttempt(payload, attempt)
  if string.sub(payload, 1, 11) == '{"attempt":' then
    return (string.gsub(payload, '^{"attempt":%d+', '{"attempt":' .. attempt, 1))
  end
  return '{"attempt":' .. attempt .. ',' .. string.sub(payload, 2)
end

local function jobId(payload)
  return string.match(payload, '^{[^{]-"id":"([^"]+)"')
end

-- Puts a job back in line: at the front for a job that already had its turn (crash, shutdown),
-- at the back for a retry. A `last` job whose key has a newer message waiting or running is
-- dropped instead: the newest message wins. Returns true when the job was queued.
local function requeue(payload, level, policy, key, front)
  if policy == 'last' then
    if redis.call('HEXISTS', qkey(level, 3), key) == 1 or redis.call('HEXISTS', KEYS[9], runningField(level, key)) == 1 then
      count(level, 'superseded')
      return false
    end
    redis.call('HSET', qkey(level, 3), key, payload)
    if front then redis.call('RPUSH', qkey(level, 4), key) else redis.call('LPUSH', qkey(level, 4), key) end
  else
    local list = qkey(level, policy == 'discard' and 2 or 1)
    if front then redis.call('RPUSH', list, payload) else redis.call('LPUSH', list, payload) end
  end
  wake(level)
  return true
end

-- Appends to the capped dead-letter list; the oldest entries beyond the cap are trimmed and counted.
local function bury(deadKey, entry, level, deadMax)
  redis.call('LPUSH', deadKey, entry)
  count(level, 'dead')
  local length = redis.call('LLEN', deadKey)
  if length > deadMax then
    redis.call('LTRIM', deadKey, 0, deadMax - 1)
    redis.call('HINCRBY', KEYS[10], 'dead:trimmed', length - deadMax)
  end
end

-- Reads level, policy and key of a stored payload (slow paths only: recovery, retries).
local function routeOf(payload)
  local job = cjson.decode(payload)
  return tonumber(job.level), job.policy or 'execute', job.key
end
