-- USES:
-- The group (tenant) of a payload, read from its routing prefix ("group" comes after "key" and
-- before "method"; a group name is plain ASCII, never escaped), or nil for the default group.
-- The caller's content comes after "method": a `,"group":"` found there is not the field. (A
-- JSON string never holds a bare `"`, so neither string can occur inside the key.)
local function groupOf(payload)
  local at = string.find(payload, ',"group":"', 1, true)
  if not at then return nil end
  local method = string.find(payload, ',"method":"', 1, true)
  if method and method < at then return nil end
  return string.match(payload, '^([%w_.:@/+=-]+)"', at + 10)
end
