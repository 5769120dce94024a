#!lua flags=allow-oom
-- Removes a waiting job, or one waiting for its retry (or its delay), found through the lookup
-- index or, for a message waiting in a list without an entry, by reading the lists. A running, dead or finished job is not removed (dead jobs: `dead purge`).
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest stats jobs delayed L1:groups L2:groups
-- USES: count countDelayed findWaiting forgetJob forgetNewest jobId placeOf queueKey routeOf
-- ARGV[1] job id   ARGV[2] most queue entries read to find a waiting job
-- Output: {code, the index entry}: a code of replies.ts: deleted, unknown, running, dead,
--         finished, notWhereIndexed (not found where the index said: the entry is dropped),
--         notWithinScan (no index entry, and not among the ARGV[2] waiting messages read, which
--         are not all: it may wait further back)
-- A message waiting in a list has no index entry unless its id is the caller's (enqueue.lua):
-- it is found by reading the lists from their tails (findWaiting), as far as ARGV[2].
local id, scanMax = ARGV[1], tonumber(ARGV[2])
local where = redis.call('HGET', K.jobs, id)
local function gone(level, policy, key, group)
  forgetJob(id)
  if policy == 'last' then forgetNewest({ policy = 'last', level = level, key = key, id = id, group = group }) end
  count(level, 'deleted')
  return { CODE.deleted, where or '' }
end
if not where then
  local hit, complete = findWaiting(id, scanMax)
  if hit then
    redis.call('LREM', queueKey(hit.level, hit.group, hit.policy), -1, hit.payload)
    if hit.group then count(hit.level, 'grouped', -1) end
    return gone(hit.level, hit.policy, nil)
  end
  return { complete and CODE.unknown or CODE.notWithinScan, '' }
end
local place = placeOf(where) or { kind = 'unreadable' }
if place.kind == 'running' then return { CODE.running, where } end
if place.kind == 'dead' then return { CODE.dead, where } end
if place.kind == 'done' then return { CODE.finished, where } end

if place.kind == 'due' then
  local due = place.due
  for _, payload in ipairs(redis.call('ZRANGEBYSCORE', K.delayed, due, due)) do
    local route = routeOf(payload)
    if route and route.id == id then
      redis.call('ZREM', K.delayed, payload)
      countDelayed(route.level, -1)
      return gone(route.level, route.policy, route.key, route.group)
    end
  end
elseif place.kind == 'waiting' then
  local level, policy, group = place.level, place.policy, place.group
  if policy == 'last' then
    local key = place.key
    local hash = queueKey(level, group, 'last')
    local payload = redis.call('HGET', hash, key)
    if payload and jobId(payload) == id then
      redis.call('HDEL', hash, key)
      redis.call('LREM', queueKey(level, group, 'last:order'), 1, key)
      if group then count(level, 'grouped', -1) end
      return gone(level, policy, key, group)
    end
  else
    local hit, complete = findWaiting(id, scanMax, level, policy, group)
    if hit then
      redis.call('LREM', queueKey(level, group, policy), -1, hit.payload)
      if group then count(level, 'grouped', -1) end
      return gone(level, policy, nil)
    end
    if not complete then return { CODE.notWithinScan, where } end
  end
end
forgetJob(id)
return { CODE.notWhereIndexed, where }
