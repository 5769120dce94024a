#!lua flags=allow-oom
-- Acknowledges finished runs of one worker when no claim is about to carry them (claimJobs
-- takes them along otherwise): finishRuns, after the lease check.
-- Nothing is accepted from a worker whose lease has run out: its runs were (or are about to
-- be) taken back by recovery and run again, so counting them here would count them twice.
-- Kept jobs are pruned by every worker's chore (pruneDone), not here.
-- KEYS: L1:last L1:last:order L2:last L2:last:order L1:last:newest L2:last:newest running stats wake:L1 wake:L2 jobs done workers worker groups:running L1:groups L2:groups sched L1:execute L2:execute L1:discard L2:discard
-- USES: finishRuns leaseHeld redisNowMs
-- ARGV[1] worker id  ARGV[2] keep finished jobs this long (ms; 0: not at all)
-- ARGV[3..] groups of 6: run token, job id, level, coalescing key ('' unless `last`),
--           outcome (done|dropped), status of the answer
-- Output: CODE.lost (-1) when the lease has run out, else the number of runs acknowledged
local now = redisNowMs()
if not leaseHeld(K.workers, ARGV[1], now) then return CODE.lost end
return finishRuns(3, now, tonumber(ARGV[2]))
