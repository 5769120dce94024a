-- USES:
-- The enqueue time in Unix ms of a payload's stored "at": milliseconds since 2026-01-01 UTC
-- (1767225600000, AT_EPOCH_MS of format/job.ts) as atStamp writes it, or, at 10^12 and above,
-- Unix milliseconds as payloads stored before that form hold them. 0 (not stamped) stays 0.
local function atMs(stored)
  if stored > 0 and stored < 1e12 then return stored + 1767225600000 end
  return stored
end
