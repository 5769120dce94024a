-- USES: count forgetJob isNewest runningField setWhere wake whereWaiting
-- Puts a job back in line: at the front for a job that already had its turn (crash, shutdown),
-- at the back for a retry. A `last` job that is no longer its key's newest message, or whose
-- key is waiting or running, is dropped instead: the newest message wins. True when queued.
local function requeue(payload, route, front)
  local level = route.level
  if route.policy == 'last' then
    local key = route.key
    if not isNewest(route) or redis.call('HEXISTS', K['L' .. level .. ':last'], key) == 1
      or redis.call('HEXISTS', K.running, runningField(level, key)) == 1 then
      count(level, 'superseded')
      forgetJob(route.id)
      return false
    end
    redis.call('HSET', K['L' .. level .. ':last'], key, payload)
    if front then redis.call('RPUSH', K['L' .. level .. ':last:order'], key) else redis.call('LPUSH', K['L' .. level .. ':last:order'], key) end
  else
    local list = (route.policy == 'discard' and K['L' .. level .. ':discard'] or K['L' .. level .. ':execute'])
    if front then redis.call('RPUSH', list, payload) else redis.call('LPUSH', list, payload) end
  end
  setWhere(route.id, whereWaiting(level, route.policy, route.key))
  wake(level)
  return true
end
