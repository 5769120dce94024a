-- USES:
-- The field of {p}:running that holds a `last` key while it runs: L<level>:<key>, or for a
-- named group's key G<level>:<group>\n<key> (the first byte tells them apart; a group name has
-- no newline).
local function runningField(level, key, group)
  if group then return 'G' .. level .. ':' .. group .. '\n' .. key end
  return 'L' .. level .. ':' .. key
end
