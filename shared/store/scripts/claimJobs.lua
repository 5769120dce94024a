#!lua flags=allow-oom
-- Claims up to n jobs for one worker by smooth weighted round robin between the levels
-- (state kept here, so the share holds across all workers) and turns between the three
-- queues of a level. Each job gets a new run token (its fencing token) and is recorded in the
-- worker's hash under it; the worker's lease is renewed. First settles the finished runs the
-- worker sends along (finishRuns: the same as finishJobs, under the same lease check and clock
-- reading), then delivers what enqueue already handed to this worker (its inbox). A worker that
-- gets nothing is about to block: it is registered idle, so enqueue can hand it the next job.
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 L2:active runs jobs paused sched workers worker inbox idle:L1 idle:L2 done L1:groups L2:groups groups:running groups:limits groups:tat
-- USES: backlog claimable count finishRuns firstToken forgetJob forgetNewest jobId leaseHeld queueKey redisClock routeOf runningField setWhere wake whereRunning
-- ARGV[1] worker id  ARGV[2] lease (ms)  ARGV[3] n  ARGV[4] most level-2 jobs allowed
-- ARGV[5] weight L1  ARGV[6] weight L2  ARGV[7] strict ('1'|'0')  ARGV[8] level-2 capacity
-- ARGV[9] how long an idle registration stays fresh (ms; longer than the worker's block timeout)
-- ARGV[10] fraction of capacity under which level 2 reopens (0.6)
-- ARGV[11] '1' when the worker takes level 1, '0' when it is dedicated to level 2 (its
--          level-2 room is 0 when it does not take level 2)
-- ARGV[12] keep finished jobs this long (ms; 0: not at all)
-- ARGV[13] runs of one group at once (0: no cap)  ARGV[14] runs of one group per second (0: no
--          limit); a group's own limits in {p}:groups:limits win (docs/design.md, Tenants)
-- ARGV[15..] finished runs to acknowledge first, in groups of 6 as finishJobs takes them
-- Output: CODE.lost (-1) when the worker's lease has run out (nothing settled, nothing
--         started); else { work left (1: level 1, 2: level 2, 3: both, 0: none), runs
--         acknowledged, ms until a group held back by its rate may run (0: none is),
--         token, payload, token, payload, … in the order they were chosen }
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
-- Settled first: a `last` key released here can be claimed again in the same call.
local acknowledged = finishRuns(15, now, tonumber(ARGV[12]), true)

local state = redis.call('HMGET', K.sched, 'cw1', 'cw2', 'turn1', 'turn2')
local credit = { tonumber(state[1]) or 0, tonumber(state[2]) or 0 }
local turn = { tonumber(state[3]) or 0, tonumber(state[4]) or 0 }
local before = { credit[1], credit[2], turn[1], turn[2] }
-- The queues found empty in this call: nothing is pushed to them while it runs (the releases
-- of the settles above came first), so each is asked once.
local empty = { {}, {} }

-- Pops the next job of the default group's queues of a level (group nil), the three taking
-- turns, or of a named group's, the three tried from `start` on (its turn); nil when it has
-- none. Also returns the queue that comes next (0 execute, 1 last, 2 discard).
-- `found`: for a named group, its queues found empty in this call (as `empty` for the level's).
local function popQueues(level, group, start, found)
  local empty = group and found or empty[level]
  local from = group and start or turn[level]
  for i = 0, 2 do
    local q = (from + i) % 3
    if not empty[q] then
      if q == 0 then
        local payload = redis.call('RPOP', queueKey(level, group, 'execute'))
        if payload then
          if not group then turn[level] = 1 end
          return payload, nil, 1
        end
      elseif q == 1 then
        local order, hash = queueKey(level, group, 'last:order'), queueKey(level, group, 'last')
        local key = redis.call('RPOP', order)
        while key do
          if redis.call('HEXISTS', K.running, runningField(level, key, group)) == 0 then
            local payload = redis.call('HGET', hash, key)
            if payload then
              redis.call('HDEL', hash, key)
              if not group then turn[level] = 2 end
              return payload, key, 2
            end
          end -- a running key stays parked until its run ends (releaseKey)
          key = redis.call('RPOP', order)
        end
      else
        local payload = redis.call('RPOP', queueKey(level, group, 'discard'))
        if payload then
          if not group then turn[level] = 0 end
          return payload, nil, 0
        end
      end
      empty[q] = true
    end
  end
  return nil
end

-- Tenants (docs/design.md): the named groups of a level with something in line wait in its
-- ring, a sorted set scored by turn stamp; the default group's stamp is in sched. The lowest
-- stamp is served next, one message per turn, and goes to the back (the level's next turn
-- number, above every other). A group at its cap or not yet due by its rate is passed over and
-- keeps its place. The turn between a group's own three queues rides in its stamp's fraction,
-- so it costs no key of its own: turn number + code/8, code = the queue to try first (0 execute,
-- 1 last, 2 discard), + 4 when that queue alone had work when last looked at ("alone": its
-- other queues were found empty; joinRing clears the mark when one of them gets work). A group
-- with work in one queue only then costs one pop per pick, not three.
-- Built on a claim's first look at a ring with members: a claim with no group waiting makes none
-- of its state or functions (Redis runs the whole script on every call).
local ringEmpty = {} -- level -> the ring has no member (asked once per level)
local function groupRound()
  local READ = 64 -- ring members read at a time
  local READS = 16 -- reads of a level's ring per claim at most (1024 members)
  local stored = redis.call('HMGET', K.sched, 'turn:L1', 'turn:L2', 'seq:L1', 'seq:L2')
  -- The default group's turn stamp per level; each level's last turn number given out (a
  -- counter: no clock decides a group's place).
  local defaultStamp = { tonumber(stored[1]) or 0, tonumber(stored[2]) or 0 }
  local seq = { tonumber(stored[3]) or 0, tonumber(stored[4]) or 0 }
  local seqBefore = { seq[1], seq[2] }
  local defaultServed = false
  local round = {} -- level -> { list of candidates in turn order, whole ring read?, reads }
  local queueTurn = {} -- group -> its next queue, read from its stamp's fraction
  local alone = {} -- group -> that queue alone has work (the stamp's mark)
  local found = {} -- level .. group -> its queues found empty in this call
  local passed = { {}, {} } -- level -> group -> passed over in this claim (its cap or its rate)
  local passedIn = { 0, 0 } -- level -> members passed over: they keep their places at the ring's front
  local dueIn -- ms until the first group passed over for its rate may run
  local defaultCap, defaultRate = tonumber(ARGV[13]) or 0, tonumber(ARGV[14]) or 0
  local limited -- any limit may apply: a default flag, or an override stored
  local groups = {} -- group -> { cap, rate, running, tat, started } as read and charged in this claim
  -- Written once per claim, not per pick: each group's runs started and limiter, the level's
  -- grouped count, the served groups' new stamps (placed before any second read of the ring).
  local groupedTaken = { 0, 0 }
  local newStamp = { {}, {} } -- level -> group -> its stamp after this claim

  local function limitsOf(g)
    local st = groups[g]
    if st then return st end
    if limited == nil then limited = defaultCap > 0 or defaultRate > 0 or redis.call('EXISTS', K['groups:limits']) == 1 end
    st = { cap = defaultCap, rate = defaultRate, running = 0, tat = 0, started = 0 }
    if limited then
      local own = redis.call('HGET', K['groups:limits'], g)
      if own then
        local c, r = string.match(own, '^([^:]*):([^:]*)$')
        if c and tonumber(c) then st.cap = tonumber(c) end
        if r and tonumber(r) then st.rate = tonumber(r) end
      end
      if st.cap > 0 then st.running = tonumber(redis.call('HGET', K['groups:running'], g)) or 0 end
      if st.rate > 0 then st.tat = tonumber(redis.call('HGET', K['groups:tat'], g)) or 0 end
    end
    groups[g] = st
    return st
  end

  -- May group g run one more now? A group passed over for its rate sets dueIn.
  local function mayRun(g)
    local st = limitsOf(g)
    if st.cap > 0 and st.running >= st.cap then return false end
    if st.rate > 0 and now < st.tat then
      local wait = math.ceil(st.tat - now)
      if not dueIn or wait < dueIn then dueIn = wait end
      return false
    end
    return true
  end

  local function placeServed(level)
    for g, score in pairs(newStamp[level]) do redis.call('ZADD', K['L' .. level .. ':groups'], score, g) end
    newStamp[level] = {}
  end

  -- The candidates of a level in turn order: the ring's next READ members after those passed
  -- over (they keep the front; the served went to the back), and the default group by its stamp
  -- unless its queues were found empty.
  local function readRound(level)
    local reads = round[level] and round[level].reads + 1 or 1
    if reads > 1 then placeServed(level) end -- the served at the back before the ring is read again
    if reads == 1 then
      -- No stamp may stand above the counter (one written by an older version, or by hand, would
      -- keep its group behind every other for good): the counter starts above the highest.
      local last = redis.call('ZRANGE', K['L' .. level .. ':groups'], -1, -1, 'WITHSCORES')
      if last[2] and tonumber(last[2]) > seq[level] then seq[level] = math.floor(tonumber(last[2])) end
    end
    local from = passedIn[level]
    local raw = redis.call('ZRANGE', K['L' .. level .. ':groups'], from, from + READ - 1, 'WITHSCORES')
    local list = {}
    local defaultAt = (empty[level][0] and empty[level][1] and empty[level][2]) and -1 or nil
    for i = 1, #raw, 2 do
      local s = tonumber(raw[i + 1])
      if not defaultAt and defaultStamp[level] <= s then
        list[#list + 1] = false
        defaultAt = #list
      end
      if not passed[level][raw[i]] then
        list[#list + 1] = raw[i]
        local code = math.floor((s - math.floor(s)) * 8 + 0.5)
        queueTurn[raw[i]], alone[raw[i]] = code % 4 % 3, code >= 4
      end
    end
    -- Behind every member read: when the read reached the ring's end, or the last read allowed
    -- (past more groups than a claim reads, all passed over, the default group still has its turn).
    if not defaultAt and (#raw < 2 * READ or reads >= READS) then list[#list + 1] = false end
    round[level] = { list = list, whole = #raw < 2 * READ or reads >= READS, reads = reads }
  end

  local R = {}

  -- Pops the next job of a level by the round of its groups, with its group (nil: the default);
  -- nil when none can be taken now (the caller charges the group once the job is not expired).
  function R.pop(level)
    if not round[level] then readRound(level) end
    while true do
      local r = round[level]
      if #r.list == 0 then
        if r.whole then return nil end
        readRound(level) -- the served went to the back, behind members not read yet
        if #round[level].list == 0 then return nil end
        r = round[level]
      end
      local g = table.remove(r.list, 1)
      if g == false then
        local payload, key = popQueues(level, nil)
        if payload then
          seq[level] = seq[level] + 1
          defaultStamp[level], defaultServed = seq[level], true
          if r.whole then r.list[#r.list + 1] = false end
          return payload, key
        end
      elseif not mayRun(g) then
        passed[level][g] = true
        passedIn[level] = passedIn[level] + 1
      else
        seq[level] = seq[level] + 1
        local emptyFound = found[level .. g] or {}
        found[level .. g] = emptyFound
        local start = queueTurn[g] or 0
        local payload, key, nextQueue = popQueues(level, g, start, emptyFound)
        if payload then
          groupedTaken[level] = groupedTaken[level] + 1
          -- The queue taken from, alone with work: it was so marked and gave the pick at once, or
          -- the group's other two queues were just found empty.
          local q = (nextQueue + 2) % 3
          if (alone[g] and q == start) or (emptyFound[(q + 1) % 3] and emptyFound[(q + 2) % 3]) then
            queueTurn[g], alone[g] = q, true
          else
            queueTurn[g], alone[g] = nextQueue, false
          end
          newStamp[level][g] = seq[level] + (queueTurn[g] + (alone[g] and 4 or 0)) / 8
          if r.whole then r.list[#r.list + 1] = g end
          return payload, key, g
        end
        newStamp[level][g] = nil
        redis.call('ZREM', K['L' .. level .. ':groups'], g) -- nothing in line: it leaves the round
      end
    end
  end

  -- One run of group g starts: counted, and its limiter advanced (GCRA, interval 1000/rate ms;
  -- a late claim keeps the schedule for up to half an interval, so the rate holds on average).
  function R.charge(g)
    local st = limitsOf(g)
    st.running = st.running + 1
    st.started = st.started + 1
    if st.rate > 0 then
      local interval = 1000 / st.rate
      st.tat = math.max(st.tat, now - interval / 2) + interval
    end
  end

  -- What the round changed, written once; returns the ms until a group held back by its rate
  -- may run (0: none is).
  function R.finish()
    for level = 1, 2 do
      placeServed(level)
      if groupedTaken[level] > 0 then count(level, 'grouped', -groupedTaken[level]) end
    end
    for g, st in pairs(groups) do
      if st.started > 0 then
        redis.call('HINCRBY', K['groups:running'], g, st.started)
        if st.rate > 0 then redis.call('HSET', K['groups:tat'], g, string.format('%.3f', st.tat)) end
      end
    end
    if defaultServed then redis.call('HSET', K.sched, 'turn:L1', defaultStamp[1], 'turn:L2', defaultStamp[2]) end
    if seq[1] ~= seqBefore[1] or seq[2] ~= seqBefore[2] then redis.call('HSET', K.sched, 'seq:L1', seq[1], 'seq:L2', seq[2]) end
    return dueIn or 0
  end

  return R
end
local groupsServed -- the group round, once built

-- Pops the next job of a level (its queues, or by the round of its groups when one waits), with
-- its group (nil: the default); nil when none can be taken now.
local function popLevel(level)
  if ringEmpty[level] then
    local payload, key = popQueues(level, nil) -- (not the queue that comes next: no group here)
    return payload, key
  end
  groupsServed = groupsServed or groupRound()
  return groupsServed.pop(level)
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
-- Whether a level has anything to claim, asked once; `emptied`: this call found it empty (at
-- the start, or by the pop that found nothing), so the baton below need not ask again.
-- One call tells whether any named group waits in either level (a deployment without groups
-- asks nothing more of the rings).
local anyRing = redis.call('EXISTS', K['L1:groups'], K['L2:groups']) > 0
local noRing = {}
local has, ringed = {}, {}
for level = 1, 2 do
  if open[level] then has[level], ringed[level] = claimable(level, not anyRing) end
  ringEmpty[level] = not ringed[level]
  -- Known empty: no ring at all, or this level's asked (a level not open here was not).
  noRing[level] = not anyRing or (open[level] and not ringed[level])
end
local emptied = { open[1] and not has[1], open[2] and not has[2] }
-- Tokens are handed out in sequence from the first (one read of {p}:runs), written back once.
local nextToken
local held = {}
while #out < 2 * n and drops < 1000 do
  local has1 = has[1]
  local has2 = has[2] and level2Taken < level2Room
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
  local payload, key, group = popLevel(level)
  if not payload then
    has[level] = false
    emptied[level] = true
  elseif expired(payload) then
    drops = drops + 1
  else
    nextToken = nextToken or firstToken(clockUs)
    local token = string.format('%.0f', nextToken)
    nextToken = nextToken + 1
    held[#held + 1] = token
    held[#held + 1] = payload
    if group then groupsServed.charge(group) end
    if key then redis.call('HSET', K.running, runningField(level, key, group), token) end
    setWhere(jobId(payload), whereRunning(now, token, worker))
    if level == 2 then level2Taken = level2Taken + 1 end
    out[#out + 1] = token
    out[#out + 1] = payload
  end
end
local dueIn = groupsServed and groupsServed.finish() or 0
if nextToken then
  redis.call('SET', K.runs, string.format('%.0f', nextToken - 1))
  for i = 1, #held, 1000 do redis.call('HSET', K.worker, unpack(held, i, math.min(#held, i + 999))) end
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
if credit[1] ~= before[1] or credit[2] ~= before[2] or turn[1] ~= before[3] or turn[2] ~= before[4] then
  redis.call('HSET', K.sched, 'cw1', credit[1], 'cw2', credit[2], 'turn1', turn[1], 'turn2', turn[2])
end
if redis.call('GET', K['L2:active']) == '0' and backlog(2) < capacity * tonumber(ARGV[10]) then
  redis.call('SET', K['L2:active'], '1')
end
-- Pass the baton: work left over wakes another idle worker.
local left = 0
-- (A level this call found empty stays empty: only a level it did not empty is asked. A level
-- whose groups were all passed over counts as emptied: another worker could take no more.)
-- (A ring empty at the start is empty still: nothing joins one during a claim.)
if not isPaused[1] and not emptied[1] and claimable(1, noRing[1]) then
  wake(1)
  left = 1
end
if not isPaused[2] and not emptied[2] and claimable(2, noRing[2]) then
  wake(2)
  left = left + 2
end
table.insert(out, 1, dueIn)
table.insert(out, 1, acknowledged)
table.insert(out, 1, left)
return out
