-- USES: deadJobOf forgetJob forgetNewest
-- A dead `last` message stays its key's newest while it is in the dead list (so a requeue of
-- it can tell whether a newer message was accepted since); it is forgotten when it leaves.
local function forgetDead(entry)
  local job = deadJobOf(entry)
  if not job then return end
  forgetJob(job.id)
  if job.level then forgetNewest(job) end
end
