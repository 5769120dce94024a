-- USES:
-- A worker's lease is its score in {p}:workers (Redis ms). Expired means dead for good: a
-- worker id is never revived, so nothing it writes after its lease ran out is accepted.
local function leaseHeld(workersKey, worker, now)
  local expiry = redis.call('ZSCORE', workersKey, worker)
  return expiry ~= false and tonumber(expiry) >= now
end
