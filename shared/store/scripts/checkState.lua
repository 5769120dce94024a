-- The state checker's atomic steps (`switchyard check`, shared/store/check/): it gathers a
-- partition with plain reads while the deployment runs, so every problem it suspects is
-- confirmed here, in one atomic read, before it is reported; and every repair re-checks its
-- condition here before it writes (a repair whose condition no longer holds writes nothing).
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 runs jobs done workers delayed dead L1:groups L2:groups groups:running sched
-- USES: deadPayloadOf groupKey groupOf jobId joinRing placeOf queueKey redisNowMs routeOf runningField wake
-- ARGV[1] key prefix with its hash tag, "{p}" (to name worker hashes and inboxes)
-- ARGV[2] worker ids to search besides those in {p}:workers, separated by "\n" (hashes found
--         by SCAN whose worker is not registered)
-- ARGV[3] 'probe' or 'repair'
-- probe:  ARGV[4..] probes, each a name then its arguments (see PROBES below for how many);
--         writes nothing. Output: one result per probe, in order.
-- repair: ARGV[4] action, ARGV[5..] its arguments (see REPAIRS below).
--         Output: 1 repaired, 0 not done (its condition no longer holds).
-- A place is named by three words: queue <level> execute|discard, last <level> <key>,
-- run <worker> <token>, delayed <due|''> '', dead '' '', done '' '', inbox <worker> '';
-- a named group's queues (docs/design.md, "Tenants"): groupQueue <level>@<group> execute|discard,
-- groupLast <level>@<group> <key>, their keys built from the tag as the scripts build them.
-- A level's `last` structures and a named group's are named by level, key and group ('': the
-- level's own), the same probes and repairs serving both.
local tag, extraWorkers, mode = ARGV[1], ARGV[2], ARGV[3]

local function workerHash(worker)
  return tag .. ':worker:' .. worker
end

-- Every worker id that may hold runs: registered ones, and those the caller found by SCAN.
local function knownWorkers()
  local ids, seen = {}, {}
  for _, w in ipairs(redis.call('ZRANGE', K.workers, 0, -1)) do
    ids[#ids + 1], seen[w] = w, true
  end
  for w in string.gmatch(extraWorkers, '[^\n]+') do
    if not seen[w] then ids[#ids + 1], seen[w] = w, true end
  end
  return ids
end

-- Calls fn(element) for each element of a list or sorted set, a thousand at a time.
local function eachOf(key, isZset, fn)
  local from = 0
  while true do
    local chunk = redis.call(isZset and 'ZRANGE' or 'LRANGE', key, from, from + 999)
    for _, element in ipairs(chunk) do fn(element) end
    if #chunk < 1000 then return end
    from = from + 1000
  end
end

local function deadJobId(entry)
  local payload = deadPayloadOf(entry)
  return payload and jobId(payload)
end

-- How many jobs of each id a list holds, counted once per call of this script.
local idCounts = {}
local function idsInList(key, idOf)
  if not idCounts[key] then
    local counts = {}
    eachOf(key, false, function(element)
      local id = idOf(element)
      if id then counts[id] = (counts[id] or 0) + 1 end
    end)
    idCounts[key] = counts
  end
  return idCounts[key]
end

-- A named group's place: its first word, <level>@<group>, read back (nil, nil for another form).
local function groupPlace(a)
  return string.match(a, '^([12])@(.+)$')
end

-- A level's `last` hash, order list and newest marks: its own (group '' or nil) or a named group's.
local function named(group)
  return group ~= nil and group ~= '' and group or nil
end
local function lastHash(level, group)
  return queueKey(tonumber(level), named(group), 'last')
end
local function lastOrder(level, group)
  return queueKey(tonumber(level), named(group), 'last:order')
end
local function lastNewest(level, group)
  return queueKey(tonumber(level), named(group), 'last:newest')
end
-- The field of {p}:running a key of that scope holds while it runs.
local function heldField(level, key, group)
  return runningField(tonumber(level), key, named(group))
end

-- How many times the job `id` waits in a group's queue of a level (its `last` hash: under `key`).
local function idAtGroup(id, level, group, policy, key)
  if policy == 'last' then
    local payload = redis.call('HGET', groupKey(level, group, 'last'), key)
    return (payload and jobId(payload) == id) and 1 or 0
  end
  if policy ~= 'execute' and policy ~= 'discard' then return 0 end
  return idsInList(groupKey(level, group, policy), jobId)[id] or 0
end

-- How many times these exact bytes are in a group's queue (`field`: a `last` key, '' for a list).
local function groupHolds(level, group, policy, field, value)
  if policy == 'last' then return redis.call('HGET', groupKey(level, group, 'last'), field) == value and 1 or 0 end
  return #redis.call('LPOS', groupKey(level, group, policy), value, 'COUNT', 0)
end

-- A group's lines in a level: { execute, discard, last:order lengths, `last` hash size, in the ring 1|0 }.
local function groupLines(level, group)
  return {
    redis.call('LLEN', groupKey(level, group, 'execute')),
    redis.call('LLEN', groupKey(level, group, 'discard')),
    redis.call('LLEN', groupKey(level, group, 'last:order')),
    redis.call('HLEN', groupKey(level, group, 'last')),
    redis.call('ZSCORE', K['L' .. tonumber(level) .. ':groups'], group) and 1 or 0,
  }
end

-- The runs of a group in worker hashes (reads every run: only on a suspicion, or to repair).
local function groupRuns(group)
  local n = 0
  for _, worker in ipairs(knownWorkers()) do
    for _, payload in ipairs(redis.call('HVALS', workerHash(worker))) do
      if groupOf(payload) == group then n = n + 1 end
    end
  end
  return n
end

-- Grouped messages waiting in a level: in the groups named ("\n" between) and the ring's members.
local function groupedWaiting(level, names)
  local seen, n = {}, 0
  local function add(group)
    if seen[group] then return end
    seen[group] = true
    local lines = groupLines(level, group)
    n = n + lines[1] + lines[2] + lines[4]
  end
  for group in string.gmatch(names, '[^\n]+') do add(group) end
  for _, group in ipairs(redis.call('ZRANGE', K['L' .. tonumber(level) .. ':groups'], 0, -1)) do add(group) end
  return n
end

-- How many times the job `id` is at a place.
local function idAt(id, kind, a, b)
  if kind == 'groupQueue' or kind == 'groupLast' then
    local level, group = groupPlace(a)
    if not level then return 0 end
    if kind == 'groupLast' then return idAtGroup(id, level, group, 'last', b) end
    return idAtGroup(id, level, group, b, '')
  end
  if kind == 'queue' then return idsInList(queueKey(tonumber(a), nil, b), jobId)[id] or 0 end
  if kind == 'dead' then return idsInList(K.dead, deadJobId)[id] or 0 end
  if kind == 'done' then return redis.call('ZSCORE', K.done, id) and 1 or 0 end
  local payload
  if kind == 'last' then payload = redis.call('HGET', K['L' .. tonumber(a) .. ':last'], b) end
  if kind == 'run' then payload = redis.call('HGET', workerHash(a), b) end
  if payload then return jobId(payload) == id and 1 or 0 end
  if kind == 'delayed' then
    local n = 0
    local due = a ~= '' and a or nil
    local members = due and redis.call('ZRANGEBYSCORE', K.delayed, due, due) or redis.call('ZRANGE', K.delayed, 0, -1)
    for _, member in ipairs(members) do
      if jobId(member) == id then n = n + 1 end
    end
    return n
  end
  return 0
end

-- How many times these exact bytes are at a place.
local function holds(kind, a, b, value)
  if kind == 'groupQueue' or kind == 'groupLast' then
    local level, group = groupPlace(a)
    if not level or (kind == 'groupQueue' and b ~= 'execute' and b ~= 'discard') then return 0 end
    if kind == 'groupLast' then return groupHolds(level, group, 'last', b, value) end
    return groupHolds(level, group, b, '', value)
  end
  local list
  if kind == 'queue' then list = queueKey(tonumber(a), nil, b) end
  if kind == 'dead' then list = K.dead end
  if kind == 'inbox' then list = workerHash(a) .. ':inbox' end
  if list then return #redis.call('LPOS', list, value, 'COUNT', 0) end
  if kind == 'delayed' then return redis.call('ZSCORE', K.delayed, value) and 1 or 0 end
  if kind == 'last' then return redis.call('HGET', K['L' .. tonumber(a) .. ':last'], b) == value and 1 or 0 end
  if kind == 'run' then return redis.call('HGET', workerHash(a), b) == value and 1 or 0 end
  return 0
end

-- The place an index entry points to, as three words (nil for an entry of no known form).
local function placeOfEntry(where)
  local place = placeOf(where)
  if not place then return nil end
  if place.kind == 'waiting' and place.group then
    if place.policy == 'last' then return 'groupLast', place.level .. '@' .. place.group, place.key end
    return 'groupQueue', place.level .. '@' .. place.group, place.policy
  end
  if place.kind == 'waiting' and place.policy == 'last' then return 'last', tostring(place.level), place.key end
  if place.kind == 'waiting' then return 'queue', tostring(place.level), place.policy end
  if place.kind == 'running' then return 'run', place.worker, place.token end
  if place.kind == 'due' then return 'delayed', place.due, '' end
  return place.kind, '', ''
end

local function idAtEntry(id, where)
  local kind, a, b = placeOfEntry(where)
  if not kind then return 0 end
  return idAt(id, kind, a, b)
end

-- The run holding a token: its worker and payload, or nil.
local function runOf(token)
  for _, worker in ipairs(knownWorkers()) do
    local payload = redis.call('HGET', workerHash(worker), token)
    if payload then return worker, payload end
  end
  return nil
end

-- Where the message `id` of a `last` key (of a level's own structures, group '', or a named
-- group's) is, if anywhere: waiting, running, delayed or dead with that key and group. Reads
-- every run, the delayed set and the dead list: only on a suspicion.
local function newestAlive(level, key, id, group)
  local function ofKey(payload)
    if jobId(payload) ~= id then return false end
    local route = routeOf(payload)
    return route ~= nil and route.level == tonumber(level) and route.key == key and route.group == named(group)
  end
  local waiting = redis.call('HGET', lastHash(level, group), key)
  if waiting and ofKey(waiting) then return 'waiting' end
  for _, worker in ipairs(knownWorkers()) do
    for _, payload in ipairs(redis.call('HVALS', workerHash(worker))) do
      if ofKey(payload) then return 'running' end
    end
  end
  local found = false
  eachOf(K.delayed, true, function(payload) found = found or ofKey(payload) end)
  if found then return 'delayed' end
  eachOf(K.dead, false, function(entry)
    local payload = deadPayloadOf(entry)
    found = found or (payload ~= nil and ofKey(payload))
  end)
  if found then return 'dead' end
  return false
end

-- Messages of each level in the delayed set, read with the scripts' own routeOf.
local function delayedByLevel()
  local n = { 0, 0 }
  eachOf(K.delayed, true, function(payload)
    local route = routeOf(payload)
    if route then n[route.level] = n[route.level] + 1 end
  end)
  return n
end

-- Decimal strings of any length: is a < b?
local function lessThan(a, b)
  a, b = string.gsub(a, '^0+', ''), string.gsub(b, '^0+', '')
  if #a ~= #b then return #a < #b end
  return a < b
end

if mode == 'probe' then
  local PROBES = {
    entry = { 1, function(id) return redis.call('HGET', K.jobs, id) end },
    idAt = { 4, idAt },
    idAtEntry = { 2, idAtEntry },
    holds = { 4, holds },
    route = {
      1,
      function(payload)
        local r = routeOf(payload)
        return r and { r.id, r.level, r.policy, r.key or '' } or false
      end,
    },
    hget = { 2, function(suffix, field) return redis.call('HGET', tag .. ':' .. suffix, field) end },
    get = { 1, function(suffix) return redis.call('GET', tag .. ':' .. suffix) end },
    inLine = { 3, function(level, key, group) return #redis.call('LPOS', lastOrder(level, group), key, 'COUNT', 0) end },
    runOf = {
      1,
      function(token)
        local worker, payload = runOf(token)
        return worker and { worker, payload } or false
      end,
    },
    worker = {
      1,
      function(worker)
        return { redis.call('HLEN', workerHash(worker)), redis.call('LLEN', workerHash(worker) .. ':inbox'), redis.call('ZSCORE', K.workers, worker) or '' }
      end,
    },
    now = { 0, function() return redisNowMs() end },
    delayedByLevel = { 0, delayedByLevel },
    newestAlive = { 4, newestAlive },
    groupOf = { 1, groupOf },
    groupLines = { 2, groupLines },
    groupRuns = { 1, function(group) return { groupRuns(group), redis.call('HGET', K['groups:running'], group) or false } end },
    grouped = {
      2,
      function(level, names) return { groupedWaiting(level, names), redis.call('HGET', K.stats, 'L' .. tonumber(level) .. ':grouped') or false } end,
    },
  }
  local out = {}
  local i = 4
  while i <= #ARGV do
    local probe = PROBES[ARGV[i]]
    if not probe then return redis.error_reply('ERR checkState: unknown probe ' .. ARGV[i]) end
    local arity, fn = probe[1], probe[2]
    out[#out + 1] = fn(unpack(ARGV, i + 1, i + arity)) or false
    i = i + 1 + arity
  end
  return out
end

local function running(level, key, group)
  return redis.call('HEXISTS', K.running, heldField(level, key, group)) == 1
end

-- At the front of its line; a named group's key puts its group in the ring too (as a release does).
local function putInLine(level, key, group)
  redis.call('RPUSH', lastOrder(level, group), key)
  if named(group) then joinRing(tonumber(level), group) end
  wake(tonumber(level))
end

local REPAIRS = {
  -- The job is at the place (these exact bytes) and the entry still reads `old` ('' none),
  -- which points to no copy of it: the entry is set to where the job is.
  setEntry = function(id, old, new, kind, a, b, payload)
    local current = redis.call('HGET', K.jobs, id)
    if (current or '') ~= old or holds(kind, a, b, payload) == 0 then return 0 end
    if old ~= '' and idAtEntry(id, old) > 0 then return 0 end
    redis.call('HSET', K.jobs, id, new)
    return 1
  end,
  -- The entry still reads `where` and nothing is there with that id: it goes.
  dropEntry = function(id, where)
    if redis.call('HGET', K.jobs, id) ~= where or idAtEntry(id, where) > 0 then return 0 end
    redis.call('HDEL', K.jobs, id)
    return 1
  end,
  -- A held key whose run is in no worker's hash: released, and its waiting message put in line.
  release = function(level, key, token)
    if redis.call('HGET', K.running, runningField(tonumber(level), key)) ~= token or runOf(token) then return 0 end
    redis.call('HDEL', K.running, runningField(tonumber(level), key))
    if redis.call('HEXISTS', K['L' .. tonumber(level) .. ':last'], key) == 1 and not redis.call('LPOS', K['L' .. tonumber(level) .. ':last:order'], key) then putInLine(level, key) end
    return 1
  end,
  -- A waiting `last` message whose key is neither in line nor running: put in line, at the front
  -- (a named group's: and the group in its ring).
  lineUp = function(level, key, group)
    if redis.call('HEXISTS', lastHash(level, group), key) == 0 or running(level, key, group) or redis.call('LPOS', lastOrder(level, group), key) then return 0 end
    putInLine(level, key, group)
    return 1
  end,
  -- A key in line more than once: the copies nearest the head go, the one nearest the tail (next to run) stays.
  dedupeLine = function(level, key, group)
    local n = #redis.call('LPOS', lastOrder(level, group), key, 'COUNT', 0)
    if n < 2 then return 0 end
    redis.call('LREM', lastOrder(level, group), n - 1, key)
    return 1
  end,
  -- A key in line with no message waiting and no run: out of the line.
  unline = function(level, key, group)
    if redis.call('HEXISTS', lastHash(level, group), key) == 1 or running(level, key, group) then return 0 end
    return redis.call('LREM', lastOrder(level, group), 0, key) > 0 and 1 or 0
  end,
  -- A newest mark pointing to a message of that key (and group) that is nowhere: it goes.
  dropNewest = function(level, key, id, group)
    if redis.call('HGET', lastNewest(level, group), key) ~= id or newestAlive(level, key, id, group) then return 0 end
    redis.call('HDEL', lastNewest(level, group), key)
    return 1
  end,
  recountDelayed = function()
    local n = delayedByLevel()
    redis.call('HSET', K.stats, 'L1:delayed', n[1], 'L2:delayed', n[2])
    return 1
  end,
  -- The run counter raised to the largest token in use, so the next token is above all of them.
  raiseRuns = function(max)
    local runs = redis.call('GET', K.runs)
    if runs and not lessThan(runs, max) then return 0 end
    redis.call('SET', K.runs, max)
    return 1
  end,
  -- A finished job kept for lookup whose index entry says something else: out of {p}:done.
  undone = function(id)
    local where = redis.call('HGET', K.jobs, id)
    local place = where and placeOf(where)
    if (place and place.kind == 'done') or not redis.call('ZSCORE', K.done, id) then return 0 end
    redis.call('ZREM', K.done, id)
    return 1
  end,
  -- Runs in the hash of a worker that is not registered: registered with a lease that ran out
  -- long ago, so the next recovery pass of any worker hands them back (attempt + 1).
  adopt = function(worker)
    if redis.call('ZSCORE', K.workers, worker) then return 0 end
    if redis.call('EXISTS', workerHash(worker), workerHash(worker) .. ':inbox') == 0 then return 0 end
    redis.call('ZADD', K.workers, 0, worker)
    return 1
  end,
}

-- A group with messages in line in a level but not in its ring: in, at the back (as a group
-- that just got work joins).
REPAIRS.ringAdd = function(level, group)
  local lines = groupLines(level, group)
  if lines[5] == 1 or lines[1] + lines[2] + lines[3] == 0 then return 0 end
  joinRing(tonumber(level), group)
  wake(tonumber(level))
  return 1
end
-- A group's count of runs set to its runs in worker hashes (the field deleted at 0).
REPAIRS.setGroupRunning = function(group)
  local n = groupRuns(group)
  if redis.call('HGET', K['groups:running'], group) == (n > 0 and tostring(n) or false) then return 0 end
  if n == 0 then
    redis.call('HDEL', K['groups:running'], group)
  else
    redis.call('HSET', K['groups:running'], group, n)
  end
  return 1
end
-- L<n>:grouped recounted from the groups' queues.
REPAIRS.recountGrouped = function(level, names)
  redis.call('HSET', K.stats, 'L' .. tonumber(level) .. ':grouped', groupedWaiting(level, names))
  return 1
end

local repair = REPAIRS[ARGV[4]]
if not repair then return redis.error_reply('ERR checkState: unknown repair ' .. tostring(ARGV[4])) end
return repair(unpack(ARGV, 5))
