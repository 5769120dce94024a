-- USES: releaseKey
-- Finds the `last` key a run holds by its token alone (for a payload that cannot be read) and
-- releases it; returns the level, key and group, or nil. Reads every held key: only for that rare case.
local function releaseByToken(token)
  local held = redis.call('HGETALL', K.running)
  for i = 1, #held, 2 do
    if held[i + 1] == tostring(token) then
      local level, key = string.match(held[i], '^L([12]):(.*)$')
      local group
      if not level then level, group, key = string.match(held[i], '^G([12]):([^\n]*)\n(.*)$') end
      if level then
        releaseKey(tonumber(level), key, token, group)
        return tonumber(level), key, group
      end
    end
  end
  return nil
end
