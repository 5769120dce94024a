-- USES: runningField wake
-- Ends the run `token` of a `last` key (a run that does not own the key releases nothing).
-- A message that arrived during the run waited outside the line (its key parked); it now goes
-- to the front, where its key would have been.
-- True when it released the key.
local function releaseKey(level, key, token)
  local field = runningField(level, key)
  if redis.call('HGET', K.running, field) ~= tostring(token) then return false end
  redis.call('HDEL', K.running, field)
  if redis.call('HEXISTS', K['L' .. level .. ':last'], key) == 1 then
    redis.call('RPUSH', K['L' .. level .. ':last:order'], key)
    wake(level)
  end
  return true
end
