-- Acknowledges finished runs of one worker: removes them from its hash, counts the outcome,
-- ends the run of their `last` keys and forgets a key's newest message once it is done.
-- Nothing is accepted from a worker whose lease has run out: its runs were (or are about to
-- be) taken back by recovery and run again, so counting them here would count them twice.
-- A run no longer in the hash was taken back already: nothing is counted or released for it.
-- KEYS[1..16]: the common layout   KEYS[17] {p}:worker:<id>   KEYS[18] {p}:workers
-- ARGV[1] worker id, then groups of 5: run token, job id, level, coalescing key ('' unless
-- `last`), outcome (done|dropped)
-- Output: -1 when the lease has run out, else the number of runs acknowledged
if not leaseHeld(KEYS[18], ARGV[1], redisNowMs()) then return -1 end
local acknowledged = 0
for i = 2, #ARGV, 5 do
  local token, id, level, key, outcome = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
  if redis.call('HDEL', KEYS[17], token) == 1 then
    acknowledged = acknowledged + 1
    count(level, outcome)
    if key ~= '' then
      releaseKey(level, key, token)
      forgetNewest({ policy = 'last', level = level, key = key, id = id })
    end
  end
end
return acknowledged
