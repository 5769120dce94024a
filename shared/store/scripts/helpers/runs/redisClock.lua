-- USES:
-- Redis's clock, read once by a script that hands out run tokens: milliseconds (leases, due
-- times) and the reading in microseconds, as a decimal string, that floors the tokens.
local function redisClock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t[1] .. string.format('%06d', tonumber(t[2]))
end
