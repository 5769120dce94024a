-- USES: groupOf groupRunsEnded
-- A run of payload left its worker's hash (failed, handed back): groupRunsEnded for its group.
local function groupRunEnded(payload)
  local group = groupOf(payload)
  if group then groupRunsEnded(group, tonumber(string.match(payload, '"level":([12])')), 1, true) end
end
