-- USES:
-- The index entry of a job waiting in its level's queue, or in a named group's (format: see placeOf).
local function whereWaiting(level, policy, key, group)
  local where = 'wL' .. level .. ':' .. policy
  if group then where = where .. '@' .. group end
  if policy == 'last' then return where .. '\n' .. key end
  return where
end
