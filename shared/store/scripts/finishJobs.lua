#!lua flags=allow-oom
-- Acknowledges finished runs of one worker: removes them from its hash, counts the outcome,
-- ends the run of their `last` keys and forgets a key's newest message once it is done. A
-- finished job is kept for lookup for --keep-done, else forgotten.
-- Nothing is accepted from a worker whose lease has run out: its runs were (or are about to
-- be) taken back by recovery and run again, so counting them here would count them twice.
-- Kept jobs are pruned by every worker's chore (pruneDone), not here.
-- A run no longer in the hash was taken back already: nothing is counted or released for it.
-- KEYS: L1:last L1:last:order L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 jobs done workers worker
-- USES: attemptOf count forgetJob forgetNewest jsonString jsonStringEnd leaseHeld redisNowMs releaseByToken releaseKey setWhere whereDone
-- ARGV[1] worker id  ARGV[2] keep finished jobs this long (ms; 0: not at all)
-- ARGV[3..] groups of 6: run token, job id, level, coalescing key ('' unless `last`),
--           outcome (done|dropped), status of the answer
-- Output: CODE.lost (-1) when the lease has run out, else the number of runs acknowledged
local now = redisNowMs()
if not leaseHeld(K.workers, ARGV[1], now) then return CODE.lost end
local keepMs = tonumber(ARGV[2])

-- What a kept job shows: when it finished and how, and the call (read from the payload's
-- routing fields and the method and url that follow them).
local function finished(id, payload, status)
  local method, urlAt = string.match(payload, ',"method":"(%a+)","url":()')
  local close = urlAt and jsonStringEnd(payload, urlAt)
  local url = close and jsonString(payload, urlAt, close) or '?'
  local enqueued = string.match(payload, '^{[^{]-"at":(%d+)') or '0'
  setWhere(id, whereDone(now, status, attemptOf(payload), enqueued, method or '?', url))
  redis.call('ZADD', K.done, now, id)
end

local acknowledged = 0
for i = 3, #ARGV, 6 do
  local token, id, level, key, outcome = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
  local payload = keepMs > 0 and redis.call('HGET', K.worker, token)
  if redis.call('HDEL', K.worker, token) == 1 then
    acknowledged = acknowledged + 1
    count(level, outcome)
    if key ~= '' then
      -- The key comes from the worker's decoding of the payload; should its bytes differ from
      -- the payload's, the run's key is still found (by its token), never held for good.
      if not releaseKey(level, key, token) then
        local heldLevel, heldKey = releaseByToken(token)
        if heldKey then key = heldKey end
      end
      forgetNewest({ policy = 'last', level = level, key = key, id = id })
    end
    if payload then finished(id, payload, ARGV[i + 5]) else forgetJob(id) end
  end
end

return acknowledged
