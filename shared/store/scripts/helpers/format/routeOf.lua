-- USES: atMs jsonString jsonStringEnd
-- The routing fields of a payload, read from its fixed prefix:
--   {["attempt":N,]"id":"<id>","at":<stored ms, see atMs>,"level":<1|2>[,"policy":"<p>"][,"key":"<k>"][,"group":"<g>"][,"ttl":<ms>],...
--    [,"timeout":<ms>][,"attempts":N],...
-- Returns {id, at (Unix ms), level, policy, key, group, ttl, attempts}, or nil for a payload that is not of this form.
local function routeOf(payload)
  local i = string.match(payload, '^{"attempt":%d+,()') or 2
  local id, at, level, p = string.match(payload, '^"id":"([%w_-]+)","at":(%d+),"level":([12])()', i)
  if not id then return nil end
  local route = { id = id, at = atMs(tonumber(at)), level = tonumber(level), policy = 'execute' }
  local policy, q = string.match(payload, '^,"policy":"(%a+)"()', p)
  if policy then
    if policy ~= 'last' and policy ~= 'discard' then return nil end
    route.policy, p = policy, q
  end
  if route.policy == 'last' then
    if string.sub(payload, p, p + 6) ~= ',"key":' then return nil end
    local close = jsonStringEnd(payload, p + 7)
    if not close then return nil end
    route.key = jsonString(payload, p + 7, close)
    if not route.key then return nil end
    p = close + 1
  end
  local group, g = string.match(payload, '^,"group":"([%w_.:@/+=-]+)"()', p)
  if group then route.group, p = group, g end
  local ttl, q = string.match(payload, '^,"ttl":(%d+)()', p)
  if ttl then route.ttl, p = tonumber(ttl), q end
  local _, r = string.match(payload, '^,"timeout":(%d+)()', p)
  if r then p = r end
  local attempts = string.match(payload, '^,"attempts":(%d+)', p)
  if attempts then route.attempts = tonumber(attempts) end
  return route
end
