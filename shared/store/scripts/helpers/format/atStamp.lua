-- USES:
-- The "at" the enqueue script writes in a payload for Redis time `nowMs` (Unix ms): milliseconds
-- since 2026-01-01 UTC (AT_EPOCH_MS of format/job.ts), two digits fewer than Unix ms; atMs
-- reads it back. A clock before that date (a Redis host set wrong) writes Unix ms, the form
-- atMs also reads, rather than a number the readers' patterns would refuse.
local function atStamp(nowMs)
  if nowMs <= 1767225600000 then return string.format('%d', nowMs) end
  return string.format('%d', nowMs - 1767225600000)
end
