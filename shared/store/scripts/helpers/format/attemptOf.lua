-- USES:
local function attemptOf(payload)
  return tonumber(string.match(payload, '^{"attempt":(%d+)')) or 1
end
