-- Acknowledges finished runs of one worker: removes them from its hash, counts the outcome,
-- ends the run of their `last` keys and forgets a key's newest message once it is done. A
-- finished job is kept for lookup for --keep-done (pruned by age and by count), else forgotten.
-- Nothing is accepted from a worker whose lease has run out: its runs were (or are about to
-- be) taken back by recovery and run again, so counting them here would count them twice.
-- A run no longer in the hash was taken back already: nothing is counted or released for it.
-- KEYS[1..19]: the common layout   KEYS[20] {p}:worker:<id>   KEYS[21] {p}:workers
-- ARGV[1] worker id  ARGV[2] keep finished jobs this long (ms; 0: not at all)
-- ARGV[3] most finished jobs kept
-- ARGV[4..] groups of 6: run token, job id, level, coalescing key ('' unless `last`),
--           outcome (done|dropped), status of the answer
-- Output: -1 when the lease has run out, else the number of runs acknowledged
local now = redisNowMs()
if not leaseHeld(KEYS[21], ARGV[1], now) then return -1 end
local keepMs, keepMax = tonumber(ARGV[2]), tonumber(ARGV[3])

-- What a kept job shows: when it finished and how, and the call (read from the payload's
-- routing fields and the method and url that follow them).
local function finished(id, payload, status)
  local method, urlAt = string.match(payload, ',"method":"(%a+)","url":()')
  local close = urlAt and jsonStringEnd(payload, urlAt)
  local url = close and jsonString(payload, urlAt, close) or '?'
  local enqueued = string.match(payload, '^{[^{]-"at":(%d+)') or '0'
  setWhere(id, 'd' .. now .. ':' .. status .. ':' .. attemptOf(payload) .. ':' .. enqueued .. ':' .. (method or '?') .. ':' .. url)
  redis.call('ZADD', KEYS[19], now, id)
end

local acknowledged = 0
for i = 4, #ARGV, 6 do
  local token, id, level, key, outcome = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
  local payload = keepMs > 0 and redis.call('HGET', KEYS[20], token)
  if redis.call('HDEL', KEYS[20], token) == 1 then
    acknowledged = acknowledged + 1
    count(level, outcome)
    if key ~= '' then
      releaseKey(level, key, token)
      forgetNewest({ policy = 'last', level = level, key = key, id = id })
    end
    if payload then finished(id, payload, ARGV[i + 5]) else forgetJob(id) end
  end
end

if keepMs > 0 and acknowledged > 0 then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[19], '-inf', now - keepMs, 'LIMIT', 0, 1000)
  local over = redis.call('ZCARD', KEYS[19]) - #expired - keepMax
  if over > 0 then
    for _, old in ipairs(redis.call('ZRANGE', KEYS[19], #expired, #expired + over - 1)) do expired[#expired + 1] = old end
  end
  for _, old in ipairs(expired) do
    redis.call('ZREM', KEYS[19], old)
    -- Only if it is still the finished job (a requeued dead job may share nothing, but be safe).
    local where = redis.call('HGET', KEYS[17], old)
    if where and string.sub(where, 1, 1) == 'd' then redis.call('HDEL', KEYS[17], old) end
  end
end
return acknowledged
