-- USES: releaseKey
-- Finds the `last` key a run holds by its token alone (for a payload that cannot be read) and
-- releases it; returns the level and key, or nil. Reads every held key: only for that rare case.
local function releaseByToken(token)
  local held = redis.call('HGETALL', K.running)
  for i = 1, #held, 2 do
    if held[i + 1] == tostring(token) then
      local level, key = string.match(held[i], '^L([12]):(.*)$')
      releaseKey(tonumber(level), key, token)
      return tonumber(level), key
    end
  end
  return nil
end
