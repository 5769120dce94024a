-- USES: joinRing queueKey runningField wake
-- Ends the run `token` of a `last` key of a level (of a named group, or the default group's)
-- (a run that does not own the key releases nothing). A message that arrived during the run
-- waited outside the line (its key parked); it now goes to the front, where its key would have
-- been. True when it released the key.
local function releaseKey(level, key, token, group)
  local field = runningField(level, key, group)
  if redis.call('HGET', K.running, field) ~= tostring(token) then return false end
  redis.call('HDEL', K.running, field)
  if redis.call('HEXISTS', queueKey(level, group, 'last'), key) == 1 then
    redis.call('RPUSH', queueKey(level, group, 'last:order'), key)
    if group then joinRing(level, group, 1) end
    wake(level)
  end
  return true
end
