#!lua flags=allow-oom
-- Registers a worker or renews its lease, on Redis's clock.
-- KEYS: workers worker
-- USES: leaseHeld redisNowMs
-- ARGV[1] worker id  ARGV[2] lease (ms)  ARGV[3] register|renew
-- Output: the lease left (ms) after this call; CODE.lost (-1) when a renewal comes after the lease ran
--         out, or a registration reuses a known id (an id lives once: see leaseHeld)
local worker, leaseMs = ARGV[1], tonumber(ARGV[2])
local now = redisNowMs()
if ARGV[3] == 'register' then
  if redis.call('ZSCORE', K.workers, worker) or redis.call('EXISTS', K.worker) == 1 then return CODE.lost end
elseif not leaseHeld(K.workers, worker, now) then
  return CODE.lost
end
redis.call('ZADD', K.workers, now + leaseMs, worker)
return leaseMs
