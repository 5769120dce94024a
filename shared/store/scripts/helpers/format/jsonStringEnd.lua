-- USES:
-- Index of the quote closing the JSON string that opens at index i, or nil.
local function jsonStringEnd(s, i)
  local j = i + 1
  while true do
    local k = string.find(s, '["\\]', j)
    if not k then return nil end
    if string.sub(s, k, k) == '"' then return k end
    j = k + 2
  end
end
