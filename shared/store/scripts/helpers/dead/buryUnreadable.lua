-- USES: attemptOf bury deadEntry forgetNewest jobId releaseByToken
-- A payload no script can route (not written by a gateway of this version) is kept for an
-- operator in the dead list instead of stopping the script that met it. A run (token given)
-- releases what it holds all the same: its `last` key, its key's newest mark, its index entry.
local function buryUnreadable(deadKey, payload, now, deadMax, token)
  local id = jobId(payload)
  if token then
    local level, key, group = releaseByToken(token)
    if level then forgetNewest({ policy = 'last', level = level, key = key, id = id, group = group }) end
  end
  bury(deadKey, deadEntry(payload, attemptOf(payload), nil, 'unreadable payload: no routing fields', now), nil, deadMax, id)
end
