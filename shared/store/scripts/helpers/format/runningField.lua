-- USES:
local function runningField(level, key)
  return 'L' .. level .. ':' .. key
end
