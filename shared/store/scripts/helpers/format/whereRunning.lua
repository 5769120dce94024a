-- USES:
-- The index entry of a job running as run `token` of `worker` since `since` (Redis ms; see placeOf).
local function whereRunning(since, token, worker)
  return 'r' .. since .. ':' .. token .. ':' .. worker
end
