-- USES:
-- A dead-letter entry: when and why it failed, then the job verbatim (last field).
local function deadEntry(payload, attempts, status, err, now)
  local statusJson = (status == nil or status == '') and 'null' or ('"' .. status .. '"')
  return '{"failedAt":' .. now .. ',"attempts":' .. attempts .. ',"status":' .. statusJson
    .. ',"error":' .. cjson.encode(err) .. ',"job":' .. payload .. '}'
end
