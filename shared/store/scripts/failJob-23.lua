#!lua flags=allow-oom
-- Settles a run that failed: schedules the job's retry, or buries it in the dead-letter list.
-- The retry payload and the dead-letter entry are written here, from the stored payload.
-- KEYS[1..19]: the common layout   KEYS[20] {p}:worker:<id>   KEYS[21] {p}:workers
-- KEYS[22] {p}:delayed (zset, due time in Redis ms)   KEYS[23] {p}:dead
-- ARGV[1] worker id  ARGV[2] run token  ARGV[3] retry|dead  ARGV[4] retry delay (ms)
-- ARGV[5] status of the failed run ('' when none)  ARGV[6] error text  ARGV[7] dead-letter cap
-- Output: -1 the lease has run out (nothing done), 0 not this worker's run any more,
--         1 retry scheduled, 2 buried, 3 retry dropped (a newer message for its key was accepted)
local worker, token, action = ARGV[1], ARGV[2], ARGV[3]
local now = redisNowMs()
if not leaseHeld(KEYS[21], worker, now) then return -1 end
local payload = redis.call('HGET', KEYS[20], token)
if not payload then return 0 end
redis.call('HDEL', KEYS[20], token)
local route = routeOf(payload)
if not route then
  buryUnreadable(KEYS[23], payload, now, tonumber(ARGV[7]), token)
  return 2
end
if route.policy == 'last' then releaseKey(route.level, route.key, token) end

if action == 'retry' then
  if not isNewest(route) then
    count(route.level, 'superseded')
    forgetJob(route.id)
    return 3
  end
  local due = now + tonumber(ARGV[4])
  redis.call('ZADD', KEYS[22], due, setAttempt(payload, attemptOf(payload) + 1))
  countDelayed(route.level, 1)
  setWhere(route.id, 't' .. due)
  count(route.level, 'retried')
  return 1
end
-- A dead `last` message stays its key's newest until a newer one is accepted (see bury).
bury(KEYS[23], deadEntry(payload, attemptOf(payload), ARGV[5], ARGV[6], now), route.level, tonumber(ARGV[7]), route.id)
return 2
