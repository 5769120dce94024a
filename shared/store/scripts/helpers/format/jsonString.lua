-- USES:
-- Decodes one JSON string literal (s[i..j], quotes included); nil when it is not one.
local function jsonString(s, i, j)
  local raw = string.sub(s, i + 1, j - 1)
  if not string.find(raw, '\\', 1, true) then return raw end
  local ok, value = pcall(cjson.decode, string.sub(s, i, j))
  if ok and type(value) == 'string' then return value end
  return nil
end
