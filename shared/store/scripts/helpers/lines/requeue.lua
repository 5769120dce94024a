-- USES: count forgetJob isNewest joinRing queueKey runningField setWhere wake whereWaiting
-- Puts a job back in line (its level's, or its group's): at the front for a job that already
-- had its turn (crash, shutdown), at the back for a retry. A `last` job that is no longer its
-- key's newest message, or whose key has a message waiting, is dropped instead: the newest
-- message wins. The newest message of a key that runs (a delayed one come due while an older
-- run of its key goes on) waits parked, as enqueue parks it: the run's end puts it in line.
-- True when queued (or parked).
local function requeue(payload, route, front)
  local level, group = route.level, route.group
  if route.policy == 'last' then
    local key = route.key
    local hash = queueKey(level, group, 'last')
    if not isNewest(route) or redis.call('HEXISTS', hash, key) == 1 then
      count(level, 'superseded')
      forgetJob(route.id)
      return false
    end
    redis.call('HSET', hash, key, payload)
    if redis.call('HEXISTS', K.running, runningField(level, key, group)) == 1 then
      if group then count(level, 'grouped') end
      setWhere(route.id, whereWaiting(level, route.policy, key, group))
      return true
    end
    local order = queueKey(level, group, 'last:order')
    if front then redis.call('RPUSH', order, key) else redis.call('LPUSH', order, key) end
  else
    local list = queueKey(level, group, route.policy)
    if front then redis.call('RPUSH', list, payload) else redis.call('LPUSH', list, payload) end
  end
  if group then
    count(level, 'grouped')
    joinRing(level, group, route.policy == 'last' and 1 or route.policy == 'discard' and 2 or 0)
  end
  setWhere(route.id, whereWaiting(level, route.policy, route.key, group))
  wake(level)
  return true
end
