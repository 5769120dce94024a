-- USES: deadPayloadOf jobId routeOf
-- The job of a dead-letter entry: its route, or for an unreadable payload just its id (or nil).
local function deadJobOf(entry)
  local payload = deadPayloadOf(entry)
  if not payload then return nil end
  return routeOf(payload) or { id = jobId(payload) }
end
