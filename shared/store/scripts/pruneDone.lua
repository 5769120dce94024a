#!lua flags=allow-oom
-- Forgets finished jobs kept for lookup (--keep-done) once they are older than the time they
-- are kept, or beyond the most kept (the oldest first); a worker that keeps none (0) forgets
-- them all, so nothing is left behind when a deployment stops keeping them. Run by every
-- worker's chore, not by the acknowledgement of each job, so a deployment that stops finishing
-- jobs still prunes. At most ARGV[3] entries per call. It also keeps the lookup index a
-- hashtable (keepHashtable): every worker runs it within a second of starting.
-- KEYS: jobs done
-- USES: keepHashtable placeOf redisNowMs
-- ARGV[1] keep finished jobs this long (ms; 0: not at all)   ARGV[2] most kept   ARGV[3] most removed per call
-- Output: the number of jobs forgotten (ARGV[3] means more may be due)
keepHashtable()
local now = redisNowMs()
local keepMs, keepMax, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local old = redis.call('ZRANGEBYSCORE', K.done, '-inf', keepMs > 0 and (now - keepMs) or '+inf', 'LIMIT', 0, batch)
local over = redis.call('ZCARD', K.done) - #old - (keepMs > 0 and keepMax or 0)
if over > 0 and #old < batch then
  for _, id in ipairs(redis.call('ZRANGE', K.done, #old, #old + math.min(over, batch - #old) - 1)) do old[#old + 1] = id end
end
for _, id in ipairs(old) do
  redis.call('ZREM', K.done, id)
  -- Only while the index still says finished (the id may have been given to a new job since).
  local where = redis.call('HGET', K.jobs, id)
  local place = where and placeOf(where)
  if place and place.kind == 'done' then redis.call('HDEL', K.jobs, id) end
end
return #old
