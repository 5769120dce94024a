#!lua flags=no-writes
-- Where a job is and what it holds, for `switchyard job <id>` and the dashboard (read-only).
-- KEYS[1..19]: the common layout   KEYS[20] {p}:delayed   KEYS[21] {p}:dead   KEYS[22] {p}:workers
-- ARGV[1] job id  ARGV[2] key prefix with its hash tag, "{p}" (to name a worker's hash)
-- ARGV[3] most queue entries read to find a waiting job's position
-- Output: {} for an unknown id, else { where (the index entry, see includes/queues.lua),
--         payload or dead-letter entry ('' when not found), position (0: next to run; -1 unknown),
--         lease expiry of the running worker (Redis ms; 0 when not running), now (Redis ms) }
local id, tag, scanMax = ARGV[1], ARGV[2], tonumber(ARGV[3])
local where = redis.call('HGET', KEYS[17], id)
if not where then return {} end
local now = redisNowMs()
local kind = string.sub(where, 1, 1)
local found, position, leaseUntil = '', -1, 0

if kind == 'w' then
  local level, policy = string.match(where, '^wL(%d):(%a+)')
  level = tonumber(level)
  if policy == 'last' then
    local key = string.sub(where, string.find(where, '\n', 1, true) + 1)
    found = redis.call('HGET', qkey(level, 3), key) or ''
    local at = redis.call('LPOS', qkey(level, 4), key, 'RANK', -1)
    if at then position = redis.call('LLEN', qkey(level, 4)) - 1 - at end
  else
    -- The tail runs next: read from there, a thousand at a time, up to scanMax entries.
    local list = qkey(level, policy == 'discard' and 2 or 1)
    local length = redis.call('LLEN', list)
    for read = 0, math.min(length, scanMax) - 1, 1000 do
      local chunk = redis.call('LRANGE', list, -read - 1000, -read - 1)
      for i = #chunk, 1, -1 do
        if jobId(chunk[i]) == id then
          found, position = chunk[i], read + (#chunk - i)
          break
        end
      end
      if found ~= '' then break end
    end
  end
elseif kind == 'r' then
  local token, worker = string.match(where, '^r%d+:(%d+):(.*)$')
  found = redis.call('HGET', tag .. ':worker:' .. worker, token) or ''
  leaseUntil = tonumber(redis.call('ZSCORE', KEYS[22], worker) or 0)
elseif kind == 't' then
  local due = string.sub(where, 2)
  for _, payload in ipairs(redis.call('ZRANGEBYSCORE', KEYS[20], due, due)) do
    if jobId(payload) == id then found = payload end
  end
elseif kind == 'x' then
  for _, entry in ipairs(redis.call('LRANGE', KEYS[21], 0, -1)) do
    if (deadJobOf(entry) or {}).id == id then
      found = entry
      break
    end
  end
end
return { where, found, position, leaseUntil, now }
