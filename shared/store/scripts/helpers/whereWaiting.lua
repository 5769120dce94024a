-- USES:
local function whereWaiting(level, policy, key)
  if policy == 'last' then return 'wL' .. level .. ':last\n' .. key end
  return 'wL' .. level .. ':' .. policy
end
