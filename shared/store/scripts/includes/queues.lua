-- Shared by every script (prepended by the loader). Every script uses the same first 19 KEYS:
--   KEYS[1..4]  {p}:L1:execute, {p}:L1:discard, {p}:L1:last, {p}:L1:last:order
--   KEYS[5..8]  the same for level 2
--   KEYS[9]     {p}:running   hash "L<level>:<key>" -> run token, for `last` keys being run
--   KEYS[10]    {p}:stats     hash of counters "L<level>:<what>"
--   KEYS[11]    {p}:wake:L1   list, one marker at most: wakes a worker blocked in BLPOP
--   KEYS[12]    {p}:wake:L2
--   KEYS[13]    {p}:L2:active "1" active (or missing), "0" refusing
--   KEYS[14]    {p}:runs      counter: the run tokens (fencing tokens), one per run started
--   KEYS[15]    {p}:L1:last:newest  hash key -> id of the newest message accepted for that
--   KEYS[16]    {p}:L2:last:newest  `last` key, while one of its messages waits, runs or retries
--   KEYS[17]    {p}:jobs      hash job id -> where the job is now (see whereWaiting and friends)
--   KEYS[18]    {p}:paused    hash "L1"/"L2" -> "1" while that level is paused (not claimed)
--   KEYS[19]    {p}:done      sorted set job id -> finished time, while finished jobs are kept
-- Script-specific keys follow from KEYS[20].
--
-- Nothing here decodes a payload's body: the routing fields sit in a fixed order at the start
-- of every payload (see routeOf), so a payload holding anything at all cannot make a script
-- fail part-way. Lease and due times are Redis's clock (TIME), never a host's.

local function qkey(level, which) -- which: 1 execute, 2 discard, 3 last (hash), 4 last:order
  return KEYS[(level - 1) * 4 + which]
end

local function newestKey(level)
  return KEYS[14 + level]
end

-- Messages of a level waiting for their time (a delay or a retry) in the delayed set, which
-- holds both levels: kept as a count in {p}:stats ("L<level>:delayed") by every script that
-- adds to the set or takes from it, so the backlog rules see them without a scan.
local function countDelayed(level, n)
  redis.call('HINCRBY', KEYS[10], 'L' .. level .. ':delayed', n)
end

-- Everything of a level that waits, in line or for its time: the level-2 switch and the
-- discard threshold count a delayed message as waiting (else a delay would bypass both).
local function backlog(level)
  return redis.call('LLEN', qkey(level, 1)) + redis.call('LLEN', qkey(level, 2)) + redis.call('HLEN', qkey(level, 3))
    + (tonumber(redis.call('HGET', KEYS[10], 'L' .. level .. ':delayed')) or 0)
end

local function claimable(level)
  return redis.call('LLEN', qkey(level, 1)) > 0 or redis.call('LLEN', qkey(level, 4)) > 0
    or redis.call('LLEN', qkey(level, 2)) > 0
end

local function paused(level)
  return redis.call('HEXISTS', KEYS[18], 'L' .. level) == 1
end

-- Work a worker may take now: waiting, in a level that is not paused.
local function available(level)
  return claimable(level) and not paused(level)
end

-- Where each job is, for lookup (`switchyard job <id>`), one short string per job:
--   w<level>:<policy>[\n<key>]    waiting in that queue (a `last` message with its key)
--   r<since>:<token>:<worker>      running, claimed at <since> (Redis ms)
--   t<due>                         waiting for its retry (or its delay) until <due>
--   x                              in the dead list
--   d<at>:<status>:<attempt>:<enqueued>:<method>:<url>   finished (kept for --keep-done)
local function setWhere(id, where)
  if id then redis.call('HSET', KEYS[17], id, where) end
end

local function forgetJob(id)
  if id then redis.call('HDEL', KEYS[17], id) end
end

local function whereWaiting(level, policy, key)
  if policy == 'last' then return 'wL' .. level .. ':last\n' .. key end
  return 'wL' .. level .. ':' .. policy
end

local function wake(level)
  local marker = KEYS[10 + level]
  if redis.call('LLEN', marker) == 0 then redis.call('LPUSH', marker, '1') end
end

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

-- Redis's clock, read once by a script that hands out run tokens: milliseconds (leases, due
-- times) and the reading in microseconds, as a decimal string, that floors the tokens.
local function redisClock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t[1] .. string.format('%06d', tonumber(t[2]))
end

-- Run tokens (fencing tokens) never repeat or go back, even when Redis loses its last writes
-- (a restart from an older snapshot, a failover to a lagging replica): the counter never falls
-- behind Redis's clock in microseconds (`clockUs`, from redisClock), so after such a loss it
-- restarts above every token handed out before (no script hands out a token per microsecond).
-- Returned as a decimal string: Lua would print a number this large in exponent form.
local function newToken(clockUs)
  local token = redis.call('INCR', KEYS[14])
  if token < tonumber(clockUs) then
    redis.call('SET', KEYS[14], clockUs)
    return clockUs
  end
  return string.format('%.0f', token)
end

-- A worker's lease is its score in {p}:workers (Redis ms). Expired means dead for good: a
-- worker id is never revived, so nothing it writes after its lease ran out is accepted.
local function leaseHeld(workersKey, worker, now)
  local expiry = redis.call('ZSCORE', workersKey, worker)
  return expiry ~= false and tonumber(expiry) >= now
end

-- Ends the run `token` of a `last` key (a run that does not own the key releases nothing).
-- A message that arrived during the run waited outside the line (its key parked); it now goes
-- to the front, where its key would have been.
-- True when it released the key.
local function releaseKey(level, key, token)
  local field = runningField(level, key)
  if redis.call('HGET', KEYS[9], field) ~= tostring(token) then return false end
  redis.call('HDEL', KEYS[9], field)
  if redis.call('HEXISTS', qkey(level, 3), key) == 1 then
    redis.call('RPUSH', qkey(level, 4), key)
    wake(level)
  end
  return true
end

local function attemptOf(payload)
  return tonumber(string.match(payload, '^{"attempt":(%d+)')) or 1
end

-- The attempt count is the payload's first field when present, so it changes without
-- decoding and re-encoding the caller's JSON.
local function setAttempt(payload, attempt)
  if string.sub(payload, 1, 11) == '{"attempt":' then
    return (string.gsub(payload, '^{"attempt":%d+', '{"attempt":' .. attempt, 1))
  end
  return '{"attempt":' .. attempt .. ',' .. string.sub(payload, 2)
end

-- The id of a payload (the first field after an optional attempt count).
local function jobId(payload)
  return string.match(payload, '^{[^{]-"id":"([%w_-]+)"')
end

-- Index of the quote closing the JSON string that opens at index i, or nil.
local function jsonStringEnd(s, i)
  local j = i + 1
  while true do
    local k = string.find(s, '["\\]', j)
    if not k then return nil end
    if string.sub(s, k, k) == '"' then return k end
    j = k + 2
  end
end

-- Decodes one JSON string literal (s[i..j], quotes included); nil when it is not one.
local function jsonString(s, i, j)
  local raw = string.sub(s, i + 1, j - 1)
  if not string.find(raw, '\\', 1, true) then return raw end
  local ok, value = pcall(cjson.decode, string.sub(s, i, j))
  if ok and type(value) == 'string' then return value end
  return nil
end

-- The routing fields of a payload, read from its fixed prefix:
--   {["attempt":N,]"id":"<id>","at":<ms>,"level":<1|2>[,"policy":"<p>"][,"key":"<k>"][,"ttl":<ms>],...
--    [,"timeout":<ms>][,"attempts":N],...
-- Returns {id, at, level, policy, key, ttl, attempts}, or nil for a payload that is not of this form.
local function routeOf(payload)
  local i = string.match(payload, '^{"attempt":%d+,()') or 2
  local id, at, level, p = string.match(payload, '^"id":"([%w_-]+)","at":(%d+),"level":([12])()', i)
  if not id then return nil end
  local route = { id = id, at = tonumber(at), level = tonumber(level), policy = 'execute' }
  local policy, q = string.match(payload, '^,"policy":"(%a+)"()', p)
  if policy then
    if policy ~= 'last' and policy ~= 'discard' then return nil end
    route.policy, p = policy, q
  end
  if route.policy == 'last' then
    if string.sub(payload, p, p + 6) ~= ',"key":' then return nil end
    local close = jsonStringEnd(payload, p + 7)
    if not close then return nil end
    route.key = jsonString(payload, p + 7, close)
    if not route.key then return nil end
    p = close + 1
  end
  local ttl, q = string.match(payload, '^,"ttl":(%d+)()', p)
  if ttl then route.ttl, p = tonumber(ttl), q end
  local _, r = string.match(payload, '^,"timeout":(%d+)()', p)
  if r then p = r end
  local attempts = string.match(payload, '^,"attempts":(%d+)', p)
  if attempts then route.attempts = tonumber(attempts) end
  return route
end

-- Is this message still the newest accepted for its `last` key? (Always true for other policies.)
local function isNewest(route)
  return route.policy ~= 'last' or redis.call('HGET', newestKey(route.level), route.key) == route.id
end

-- The message's key has nothing newer alive once this message is finished for good.
local function forgetNewest(route)
  if route.policy == 'last' and redis.call('HGET', newestKey(route.level), route.key) == route.id then
    redis.call('HDEL', newestKey(route.level), route.key)
  end
end

-- Puts a job back in line: at the front for a job that already had its turn (crash, shutdown),
-- at the back for a retry. A `last` job that is no longer its key's newest message, or whose
-- key is waiting or running, is dropped instead: the newest message wins. True when queued.
local function requeue(payload, route, front)
  local level = route.level
  if route.policy == 'last' then
    local key = route.key
    if not isNewest(route) or redis.call('HEXISTS', qkey(level, 3), key) == 1
      or redis.call('HEXISTS', KEYS[9], runningField(level, key)) == 1 then
      count(level, 'superseded')
      forgetJob(route.id)
      return false
    end
    redis.call('HSET', qkey(level, 3), key, payload)
    if front then redis.call('RPUSH', qkey(level, 4), key) else redis.call('LPUSH', qkey(level, 4), key) end
  else
    local list = qkey(level, route.policy == 'discard' and 2 or 1)
    if front then redis.call('RPUSH', list, payload) else redis.call('LPUSH', list, payload) end
  end
  setWhere(route.id, whereWaiting(level, route.policy, route.key))
  wake(level)
  return true
end

-- A dead-letter entry: when and why it failed, then the job verbatim (last field).
local function deadEntry(payload, attempts, status, err, now)
  local statusJson = (status == nil or status == '') and 'null' or ('"' .. status .. '"')
  return '{"failedAt":' .. now .. ',"attempts":' .. attempts .. ',"status":' .. statusJson
    .. ',"error":' .. cjson.encode(err) .. ',"job":' .. payload .. '}'
end

-- The payload inside a dead-letter entry, or nil.
local function deadPayloadOf(entry)
  local i = string.match(entry, '^{"failedAt":%d+,"attempts":%d+,"status":[^,]*,"error":()')
  if not i then return nil end
  local close = jsonStringEnd(entry, i)
  if not close or string.sub(entry, close + 1, close + 7) ~= ',"job":' then return nil end
  return string.sub(entry, close + 8, -2)
end

-- The job of a dead-letter entry: its route, or for an unreadable payload just its id (or nil).
local function deadJobOf(entry)
  local payload = deadPayloadOf(entry)
  if not payload then return nil end
  return routeOf(payload) or { id = jobId(payload) }
end

-- A dead `last` message stays its key's newest while it is in the dead list (so a requeue of
-- it can tell whether a newer message was accepted since); it is forgotten when it leaves.
local function forgetDead(entry)
  local job = deadJobOf(entry)
  if not job then return end
  forgetJob(job.id)
  if job.level then forgetNewest(job) end
end

-- Appends to the capped dead-letter list; the oldest entries beyond the cap are trimmed and
-- counted, and leave the lookup index with them. `id`: the job's (nil for an unreadable payload).
-- level nil: a payload of no known level (counted as dead:unreadable).
local function bury(deadKey, entry, level, deadMax, id)
  redis.call('LPUSH', deadKey, entry)
  if id then setWhere(id, 'x') end
  if level then count(level, 'dead') else redis.call('HINCRBY', KEYS[10], 'dead:unreadable', 1) end
  local length = redis.call('LLEN', deadKey)
  if length > deadMax then
    for _, old in ipairs(redis.call('LRANGE', deadKey, deadMax, -1)) do forgetDead(old) end
    redis.call('LTRIM', deadKey, 0, deadMax - 1)
    redis.call('HINCRBY', KEYS[10], 'dead:trimmed', length - deadMax)
  end
end

-- Finds the `last` key a run holds by its token alone (for a payload that cannot be read) and
-- releases it; returns the level and key, or nil. Reads every held key: only for that rare case.
local function releaseByToken(token)
  local held = redis.call('HGETALL', KEYS[9])
  for i = 1, #held, 2 do
    if held[i + 1] == tostring(token) then
      local level, key = string.match(held[i], '^L([12]):(.*)$')
      releaseKey(tonumber(level), key, token)
      return tonumber(level), key
    end
  end
  return nil
end

-- A payload no script can route (not written by a gateway of this version) is kept for an
-- operator in the dead list instead of stopping the script that met it. A run (token given)
-- releases what it holds all the same: its `last` key, its key's newest mark, its index entry.
local function buryUnreadable(deadKey, payload, now, deadMax, token)
  local id = jobId(payload)
  if token then
    local level, key = releaseByToken(token)
    if level then forgetNewest({ policy = 'last', level = level, key = key, id = id }) end
  end
  bury(deadKey, deadEntry(payload, attemptOf(payload), nil, 'unreadable payload: no routing fields', now), nil, deadMax, id)
end
