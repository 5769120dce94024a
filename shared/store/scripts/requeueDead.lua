#!lua
-- Moves dead jobs back into their queues with attempt 1: the one whose id is given, or all of
-- them, oldest first. A `last` job is requeued only while it is still its key's
-- newest accepted message: a newer one, waiting, running or already finished, wins.
-- Entries that cannot be read stay in the list.
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 jobs dead L1:groups L2:groups sched
-- USES: count deadPayloadOf forgetJob forgetNewest isNewest requeue routeOf setAttempt
-- ARGV[1] 'all' or 'one'   ARGV[2] the job id (one): an id is never a pattern, '*' included
-- Output: for all, the number of jobs requeued; for one id, a code of replies.ts: requeued,
--         unknown (no such dead job), superseded (a newer message for its key was accepted)
local all, wanted = ARGV[1] == 'all', ARGV[2]

-- CODE.requeued, CODE.superseded, or nil for an unreadable payload
local function revive(payload)
  local route = routeOf(payload)
  if not route then return nil end
  -- A dead `last` message keeps its key's newest mark while it is dead (see bury): any other
  -- mark, or none, means a newer message was accepted since, and the newest wins even over the
  -- dead list (it may have run and finished already).
  if not isNewest(route) then
    count(route.level, 'superseded')
    forgetJob(route.id)
    return CODE.superseded
  end
  if requeue(setAttempt(payload, 1), route, false) then return CODE.requeued end
  forgetNewest(route)
  return CODE.superseded
end

if all then
  -- One entry at a time from the oldest end: each leaves the list as it is requeued.
  local moved = 0
  for _ = 1, redis.call('LLEN', K.dead) do
    local entry = redis.call('RPOP', K.dead)
    local payload = deadPayloadOf(entry)
    local outcome = payload and revive(payload)
    if outcome == nil then redis.call('LPUSH', K.dead, entry) end
    if outcome == 1 then moved = moved + 1 end
  end
  return moved
end

local entries = redis.call('LRANGE', K.dead, 0, -1)
for i = #entries, 1, -1 do
  local payload = deadPayloadOf(entries[i])
  local route = payload and routeOf(payload)
  if route and route.id == wanted then
    redis.call('LREM', K.dead, 1, entries[i])
    return revive(payload)
  end
end
return CODE.unknown
