-- Moves dead jobs back into their queues with attempt 1: the one whose id is given, or all of
-- them (id '*'), oldest first. A `last` job whose key has a newer message alive is not
-- requeued (the newest message wins); requeued, it becomes its key's newest message.
-- Entries that cannot be read stay in the list.
-- KEYS[1..19]: the common layout   KEYS[20] {p}:dead
-- ARGV[1] job id or '*'
-- Output: for '*', the number of jobs requeued; for one id, 1 requeued, 0 no such dead job,
--         2 not requeued: a newer message for its key was accepted
local wanted = ARGV[1]

-- 1 requeued, 2 superseded, nil unreadable
local function revive(payload)
  local route = routeOf(payload)
  if not route then return nil end
  local claimedNewest = false
  if route.policy == 'last' then
    local newest = redis.call('HGET', newestKey(route.level), route.key)
    if newest and newest ~= route.id then
      count(route.level, 'superseded')
      forgetJob(route.id)
      return 2
    end
    if not newest then
      redis.call('HSET', newestKey(route.level), route.key, route.id)
      claimedNewest = true
    end
  end
  if requeue(setAttempt(payload, 1), route, false) then return 1 end
  if claimedNewest then forgetNewest(route) end
  return 2
end

if wanted == '*' then
  -- One entry at a time from the oldest end: each leaves the list as it is requeued.
  local moved = 0
  for _ = 1, redis.call('LLEN', KEYS[20]) do
    local entry = redis.call('RPOP', KEYS[20])
    local payload = deadPayloadOf(entry)
    local outcome = payload and revive(payload)
    if outcome == nil then redis.call('LPUSH', KEYS[20], entry) end
    if outcome == 1 then moved = moved + 1 end
  end
  return moved
end

local entries = redis.call('LRANGE', KEYS[20], 0, -1)
for i = #entries, 1, -1 do
  local payload = deadPayloadOf(entries[i])
  local route = payload and routeOf(payload)
  if route and route.id == wanted then
    redis.call('LREM', KEYS[20], 1, entries[i])
    return revive(payload)
  end
end
return 0
