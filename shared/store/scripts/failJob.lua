#!lua flags=allow-oom
-- Settles a run that failed: schedules the job's retry, or buries it in the dead-letter list.
-- The retry payload and the dead-letter entry are written here, from the stored payload.
-- KEYS: L1:last L1:last:order L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 jobs workers worker delayed dead L1:groups L2:groups groups:running sched L1:execute L2:execute L1:discard L2:discard
-- USES: attemptOf bury buryUnreadable count countDelayed deadEntry forgetJob groupRunEnded isNewest leaseHeld redisNowMs releaseKey routeOf setAttempt setWhere whereDue
-- ARGV[1] worker id  ARGV[2] run token  ARGV[3] retry|dead  ARGV[4] retry delay (ms)
-- ARGV[5] status of the failed run ('' when none)  ARGV[6] error text  ARGV[7] dead-letter cap
-- Output: a code of replies.ts: lost (the lease has run out: nothing done), gone (not this
--         worker's run any more), retry (scheduled), dead (buried), superseded (retry dropped:
--         a newer message for its key was accepted)
local worker, token, action = ARGV[1], ARGV[2], ARGV[3]
local now = redisNowMs()
if not leaseHeld(K.workers, worker, now) then return CODE.lost end
local payload = redis.call('HGET', K.worker, token)
if not payload then return CODE.gone end
redis.call('HDEL', K.worker, token)
groupRunEnded(payload)
local route = routeOf(payload)
if not route then
  buryUnreadable(K.dead, payload, now, tonumber(ARGV[7]), token)
  return CODE.dead
end
if route.policy == 'last' then releaseKey(route.level, route.key, token, route.group) end

if action == 'retry' then
  if not isNewest(route) then
    count(route.level, 'superseded')
    forgetJob(route.id)
    return CODE.superseded
  end
  local due = now + tonumber(ARGV[4])
  redis.call('ZADD', K.delayed, due, setAttempt(payload, attemptOf(payload) + 1))
  countDelayed(route.level, 1)
  setWhere(route.id, whereDue(due))
  count(route.level, 'retried')
  return CODE.retry
end
-- A dead `last` message stays its key's newest until a newer one is accepted (see bury).
bury(K.dead, deadEntry(payload, attemptOf(payload), ARGV[5], ARGV[6], now), route.level, tonumber(ARGV[7]), route.id)
return CODE.dead
