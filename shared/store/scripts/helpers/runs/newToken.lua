-- USES:
-- Run tokens (fencing tokens) never repeat or go back, even when Redis loses its last writes
-- (a restart from an older snapshot, a failover to a lagging replica): the counter never falls
-- behind Redis's clock in microseconds (`clockUs`, from redisClock), so after such a loss it
-- restarts above every token handed out before (no script hands out a token per microsecond).
-- Returned as a decimal string: Lua would print a number this large in exponent form.
local function newToken(clockUs)
  local token = redis.call('INCR', K.runs)
  if token < tonumber(clockUs) then
    redis.call('SET', K.runs, clockUs)
    return clockUs
  end
  return string.format('%.0f', token)
end
