-- USES:
local function wake(level)
  local marker = K['wake:L' .. level]
  if redis.call('LLEN', marker) == 0 then redis.call('LPUSH', marker, '1') end
end
