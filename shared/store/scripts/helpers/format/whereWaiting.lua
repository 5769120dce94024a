-- USES:
-- The index entry of a job waiting in its level's queue (format: see placeOf).
local function whereWaiting(level, policy, key)
  if policy == 'last' then return 'wL' .. level .. ':last\n' .. key end
  return 'wL' .. level .. ':' .. policy
end
