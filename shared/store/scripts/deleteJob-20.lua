#!lua flags=allow-oom
-- Removes a waiting job, or one waiting for its retry (or its delay), found through the lookup
-- index. A running, dead or finished job is not removed (dead jobs: `dead purge`).
-- KEYS[1..19]: the common layout   KEYS[20] {p}:delayed
-- ARGV[1] job id
-- Output: {code, detail}: 1 deleted; 0 unknown; 2 running; 3 dead; 4 finished; 5 not found
--         where the index said (an index out of step: the entry is dropped)
local id = ARGV[1]
local where = redis.call('HGET', KEYS[17], id)
if not where then return { 0, '' } end
local kind = string.sub(where, 1, 1)
if kind == 'r' then return { 2, where } end
if kind == 'x' then return { 3, where } end
if kind == 'd' then return { 4, where } end

local function gone(level, policy, key)
  forgetJob(id)
  if policy == 'last' then forgetNewest({ policy = 'last', level = level, key = key, id = id }) end
  count(level, 'deleted')
  return { 1, where }
end

if kind == 't' then
  local due = string.sub(where, 2)
  for _, payload in ipairs(redis.call('ZRANGEBYSCORE', KEYS[20], due, due)) do
    local route = routeOf(payload)
    if route and route.id == id then
      redis.call('ZREM', KEYS[20], payload)
      countDelayed(route.level, -1)
      return gone(route.level, route.policy, route.key)
    end
  end
else
  local level, policy = string.match(where, '^wL(%d):(%a+)')
  level = tonumber(level)
  if policy == 'last' then
    local key = string.sub(where, string.find(where, '\n', 1, true) + 1)
    local payload = redis.call('HGET', qkey(level, 3), key)
    if payload and jobId(payload) == id then
      redis.call('HDEL', qkey(level, 3), key)
      redis.call('LREM', qkey(level, 4), 1, key)
      return gone(level, policy, key)
    end
  else
    local list = qkey(level, policy == 'discard' and 2 or 1)
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
return { 5, where }
