-- USES:
-- The id of a payload (the first field after an optional attempt count).
local function jobId(payload)
  return string.match(payload, '^{[^{]-"id":"([%w_-]+)"')
end
