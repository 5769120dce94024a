-- USES:
-- The index entry of a finished job kept for lookup (see placeOf): when and how it finished, and
-- the call. The url comes last: it may hold ':'.
local function whereDone(at, status, attempt, enqueued, method, url)
  return 'd' .. at .. ':' .. status .. ':' .. attempt .. ':' .. enqueued .. ':' .. method .. ':' .. url
end
