-- USES: jsonStringEnd
-- The payload inside a dead-letter entry, or nil.
local function deadPayloadOf(entry)
  local i = string.match(entry, '^{"failedAt":%d+,"attempts":%d+,"status":[^,]*,"error":()')
  if not i then return nil end
  local close = jsonStringEnd(entry, i)
  if not close or string.sub(entry, close + 1, close + 7) ~= ',"job":' then return nil end
  return string.sub(entry, close + 8, -2)
end
