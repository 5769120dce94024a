#!lua flags=allow-oom
-- Removes a waiting job, or one waiting for its retry (or its delay), found through the lookup
-- index. A running, dead or finished job is not removed (dead jobs: `dead purge`).
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest stats jobs delayed
-- USES: count countDelayed forgetJob forgetNewest jobId routeOf
-- ARGV[1] job id
-- Output: {code, the index entry}: a code of replies.ts: deleted, unknown, running, dead,
--         finished, notWhereIndexed (not found where the index said: the entry is dropped)
local id = ARGV[1]
local where = redis.call('HGET', K.jobs, id)
if not where then return { CODE.unknown, '' } end
local kind = string.sub(where, 1, 1)
if kind == 'r' then return { CODE.running, where } end
if kind == 'x' then return { CODE.dead, where } end
if kind == 'd' then return { CODE.finished, where } end

local function gone(level, policy, key)
  forgetJob(id)
  if policy == 'last' then forgetNewest({ policy = 'last', level = level, key = key, id = id }) end
  count(level, 'deleted')
  return { CODE.deleted, where }
end

if kind == 't' then
  local due = string.sub(where, 2)
  for _, payload in ipairs(redis.call('ZRANGEBYSCORE', K.delayed, due, due)) do
    local route = routeOf(payload)
    if route and route.id == id then
      redis.call('ZREM', K.delayed, payload)
      countDelayed(route.level, -1)
      return gone(route.level, route.policy, route.key)
    end
  end
else
  local level, policy = string.match(where, '^wL(%d):(%a+)')
  level = tonumber(level)
  if policy == 'last' then
    local key = string.sub(where, string.find(where, '\n', 1, true) + 1)
    local payload = redis.call('HGET', K['L' .. level .. ':last'], key)
    if payload and jobId(payload) == id then
      redis.call('HDEL', K['L' .. level .. ':last'], key)
      redis.call('LREM', K['L' .. level .. ':last:order'], 1, key)
      return gone(level, policy, key)
    end
  else
    local list = (policy == 'discard' and K['L' .. level .. ':discard'] or K['L' .. level .. ':execute'])
    local length = redis.call('LLEN', list)
    for from = 0, length - 1, 1000 do
      for _, payload in ipairs(redis.call('LRANGE', list, from, from + 999)) do
        if jobId(payload) == id then
          redis.call('LREM', list, 1, payload)
          return gone(level, policy, nil)
        end
      end
    end
  end
end
forgetJob(id)
return { CODE.notWhereIndexed, where }
