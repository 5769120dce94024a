#!lua flags=allow-oom
-- Registers a worker or renews its lease, on Redis's clock.
-- KEYS[1..19]: the common layout (unused; kept for the loader's one include)   KEYS[20] {p}:workers
-- KEYS[21] {p}:worker:<id> (its runs)
-- ARGV[1] worker id  ARGV[2] lease (ms)  ARGV[3] register|renew
-- Output: the lease left (ms) after this call; -1 when a renewal comes after the lease ran
--         out, or a registration reuses a known id (an id lives once: see leaseHeld)
local worker, leaseMs = ARGV[1], tonumber(ARGV[2])
local now = redisNowMs()
if ARGV[3] == 'register' then
  if redis.call('ZSCORE', KEYS[20], worker) or redis.call('EXISTS', KEYS[21]) == 1 then return -1 end
elseif not leaseHeld(KEYS[20], worker, now) then
  return -1
end
redis.call('ZADD', KEYS[20], now + leaseMs, worker)
return leaseMs
