#!lua flags=no-writes
-- Where a job is and what it holds, for `switchyard job <id>` and the dashboard (read-only).
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order jobs workers delayed dead stats L1:groups L2:groups L1:last:newest L2:last:newest
-- USES: deadJobOf findWaiting jobId placeOf queueKey redisNowMs whereWaiting
-- ARGV[1] job id  ARGV[2] key prefix with its hash tag, "{p}" (to name a worker's hash)
-- ARGV[3] most queue entries read to find a waiting job (and its position)
-- Output: {} for an unknown id, else { where (the index entry, see helpers/format/placeOf.lua),
--         payload or dead-letter entry ('' when not found), position (0: next to run; -1 unknown),
--         lease expiry of the running worker (Redis ms; 0 when not running), now (Redis ms) }.
--         A job waiting in a list without an index entry (enqueue.lua) is found by reading the
--         lists: its `where` is the entry it would have. When the lists hold more than ARGV[3]
--         entries and the job is not among those read: { '', '', entries read, 0, now }.
local id, tag, scanMax = ARGV[1], ARGV[2], tonumber(ARGV[3])
local where = redis.call('HGET', K.jobs, id)
local now = redisNowMs()
if not where then
  local hit, complete = findWaiting(id, scanMax)
  if hit then return { whereWaiting(hit.level, hit.policy, nil, hit.group), hit.payload, hit.position, 0, now } end
  if complete then return {} end
  return { '', '', scanMax, 0, now }
end
local place = placeOf(where) or { kind = 'unreadable' }
local found, position, leaseUntil = '', -1, 0

if place.kind == 'waiting' then
  local level, policy, group = place.level, place.policy, place.group
  if policy == 'last' then
    local key = place.key
    local order = queueKey(level, group, 'last:order')
    found = redis.call('HGET', queueKey(level, group, 'last'), key) or ''
    local at = redis.call('LPOS', order, key, 'RANK', -1)
    if at then position = redis.call('LLEN', order) - 1 - at end
  else
    -- The tail runs next: read from there, up to scanMax entries.
    local hit = findWaiting(id, scanMax, level, policy, group)
    if hit then found, position = hit.payload, hit.position end
  end
elseif place.kind == 'running' then
  local token, worker = place.token, place.worker
  found = redis.call('HGET', tag .. ':worker:' .. worker, token) or ''
  leaseUntil = tonumber(redis.call('ZSCORE', K.workers, worker) or 0)
elseif place.kind == 'due' then
  local due = place.due
  for _, payload in ipairs(redis.call('ZRANGEBYSCORE', K.delayed, due, due)) do
    if jobId(payload) == id then found = payload end
  end
elseif place.kind == 'dead' then
  for _, entry in ipairs(redis.call('LRANGE', K.dead, 0, -1)) do
    if (deadJobOf(entry) or {}).id == id then
      found = entry
      break
    end
  end
end
return { where, found, position, leaseUntil, now }
