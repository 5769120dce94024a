#!lua flags=allow-oom
-- Hands runs of one worker back to their queues, at the front. Three cases:
--   expired:  the worker's lease ran out (it died or stalled): all its runs, attempt + 1, dead
--             once attempts are used up; the worker leaves the set for good. Refused (0) while
--             its lease still holds.
--   shutdown: the worker is stopping: all its runs, attempt unchanged; it leaves the set
--   orphans:  the worker lost replies while Redis was away: the runs recorded for it that it
--             does not know it holds (ARGV[5..]), attempt unchanged; it stays in the set
-- In every case the worker leaves the idle sets and its inbox is emptied: a job handed to it
-- but not received is in its hash, so it is handed back with the rest (orphans: not held).
-- Each run leaves the hash as it is handed back, so a pass that stopped half-way can be run
-- again without handing anything back twice; a payload that cannot be routed goes to the dead
-- list rather than stopping the pass.
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 jobs workers worker inbox idle:L1 idle:L2 dead L1:groups L2:groups groups:running sched
-- USES: attemptOf bury buryUnreadable count deadEntry groupRunEnded leaseHeld redisNowMs releaseKey requeue routeOf setAttempt
-- ARGV[1] worker id  ARGV[2] expired|shutdown|orphans  ARGV[3] attempts allowed (unless the job
-- carries its own)  ARGV[4] dead-letter cap
-- ARGV[5..] run tokens the worker holds (orphans)
-- Output: number of jobs handed back to a queue
local worker, mode = ARGV[1], ARGV[2]
local expired = mode == 'expired'
local attempts, deadMax = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = redisNowMs()
if expired and leaseHeld(K.workers, worker, now) then return 0 end
local known = {}
for i = 5, #ARGV do known[ARGV[i]] = true end
local handedBack = 0

local function handBack(token, payload)
  redis.call('HDEL', K.worker, token)
  groupRunEnded(payload)
  local route = routeOf(payload)
  if not route then
    buryUnreadable(K.dead, payload, now, deadMax, token)
    return
  end
  if route.policy == 'last' then releaseKey(route.level, route.key, token, route.group) end
  local attempt = attemptOf(payload)
  -- The job's own attempts (queue_detail.attempts) win over the worker's --attempts.
  if expired and attempt >= (route.attempts or attempts) then
    bury(K.dead, deadEntry(payload, attempt, nil, 'worker lost: lease expired', now), route.level, deadMax, route.id)
    return
  end
  if expired then
    payload = setAttempt(payload, attempt + 1)
    count(route.level, 'recovered')
  end
  if requeue(payload, route, true) then handedBack = handedBack + 1 end
end

redis.call('ZREM', K['idle:L1'], worker)
redis.call('ZREM', K['idle:L2'], worker)
redis.call('DEL', K.inbox)
-- In the order they were claimed (run tokens rise; the hash keeps no order of its own): each goes
-- to the front, so the newest first and the oldest last, which runs next.
local raw = redis.call('HGETALL', K.worker)
local runs = {}
for i = 1, #raw, 2 do
  if mode ~= 'orphans' or not known[raw[i]] then runs[#runs + 1] = { token = raw[i], payload = raw[i + 1] } end
end
table.sort(runs, function(a, b) return (tonumber(a.token) or 0) > (tonumber(b.token) or 0) end)
for _, run in ipairs(runs) do handBack(run.token, run.payload) end
if mode ~= 'orphans' then redis.call('ZREM', K.workers, worker) end
return handedBack
