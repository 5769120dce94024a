-- USES:
-- A named group that has just got something in line (a queue of it that was empty) joins its
-- level's ring at the back: its turn stamp is the level's next turn number (a counter, so no
-- clock can misplace it). A group already there keeps its place; if the claim had marked it as
-- having work in one queue only (its stamp's fraction: queue + 4, see claimJobs.lua), the mark
-- goes: its queues take turns again. `queue` (0 execute, 1 last, 2 discard; optional): the
-- queue that got the work; a group joining with it has work there alone, and is so marked.
local function joinRing(level, group, queue)
  local ring = K['L' .. level .. ':groups']
  local score = redis.call('ZSCORE', ring, group)
  if not score then
    redis.call('ZADD', ring, redis.call('HINCRBY', K.sched, 'seq:L' .. level, 1) + (queue and (queue + 4) / 8 or 0), group)
    return
  end
  score = tonumber(score)
  if score - math.floor(score) >= 0.5 then redis.call('ZADD', ring, score - 0.5, group) end
end
