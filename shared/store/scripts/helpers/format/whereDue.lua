-- USES:
-- The index entry of a job in the delayed set, due at `due` (Redis ms; see placeOf).
local function whereDue(due)
  return 't' .. due
end
