-- USES:
-- The attempt count is the payload's first field when present, so it changes without
-- decoding and re-encoding the caller's JSON.
local function setAttempt(payload, attempt)
  if string.sub(payload, 1, 11) == '{"attempt":' then
    return (string.gsub(payload, '^{"attempt":%d+', '{"attempt":' .. attempt, 1))
  end
  return '{"attempt":' .. attempt .. ',' .. string.sub(payload, 2)
end
