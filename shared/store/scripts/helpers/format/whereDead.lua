-- USES:
-- The index entry of a job in the dead list (see placeOf): the dead entry itself says the rest.
local function whereDead()
  return 'x'
end
