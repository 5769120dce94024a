-- Hands jobs of one worker back to their queues, at the front. Three cases:
--   expired:  the worker's lease expired (it died): all its jobs, attempt + 1, dead once
--             attempts are used up; the worker leaves the set
--   shutdown: the worker is stopping: all its jobs, attempt unchanged; it leaves the set
--   orphans:  the worker lost replies while Redis was away: the jobs recorded for it that it
--             does not know it holds (ARGV[6..]), attempt unchanged; it stays in the set
-- In every case the worker leaves the idle set and its inbox is emptied: a job handed to it
-- but not received is in its hash, so it is handed back with the rest (orphans: not held).
-- KEYS[1..13]: the common layout   KEYS[14] {p}:worker:<id>   KEYS[15] {p}:workers   KEYS[16] {p}:dead
-- KEYS[17] {p}:idle:L1   KEYS[18] {p}:idle:L2   KEYS[19] {p}:worker:<id>:inbox
-- ARGV[1] worker id  ARGV[2] now (ms)  ARGV[3] expired|shutdown|orphans
-- ARGV[4] attempts allowed  ARGV[5] dead-letter cap  ARGV[6..] ids the worker holds (orphans)
-- Output: number of jobs handed back
local worker, now, mode = ARGV[1], ARGV[2], ARGV[3]
local expired = mode == 'expired'
local attempts, deadMax = tonumber(ARGV[4]), tonumber(ARGV[5])
local known = {}
for i = 6, #ARGV do known[ARGV[i]] = true end
local handedBack = 0

local function handBack(payload)
  local level, policy, key = routeOf(payload)
  if policy == 'last' and redis.call('HGET', KEYS[9], runningField(level, key)) == worker then
    releaseKey(level, key)
  end
  local attempt = attemptOf(payload)
  if expired and attempt >= attempts then
    bury(KEYS[16], '{"failedAt":' .. now .. ',"attempts":' .. attempt .. ',"status":null,"error":"worker lost: lease expired","job":' .. payload .. '}', level, deadMax)
    return
  end
  if expired then
    payload = setAttempt(payload, attempt + 1)
    count(level, 'recovered')
  end
  if requeue(payload, level, policy, key, true) then handedBack = handedBack + 1 end
end

redis.call('ZREM', KEYS[17], worker)
redis.call('ZREM', KEYS[18], worker)
redis.call('DEL', KEYS[19])
local jobs = redis.call('HGETALL', KEYS[14])
for i = 1, #jobs, 2 do
  if mode ~= 'orphans' then
    handBack(jobs[i + 1])
  elseif not known[jobs[i]] then
    handBack(jobs[i + 1])
    redis.call('HDEL', KEYS[14], jobs[i])
  end
end
if mode ~= 'orphans' then
  redis.call('DEL', KEYS[14])
  redis.call('ZREM', KEYS[15], worker)
end
return handedBack
