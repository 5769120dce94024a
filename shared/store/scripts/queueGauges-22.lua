#!lua flags=no-writes
-- What an operator alerts on, read in one step (read-only): backlog per queue, the age of the
-- oldest waiting message per level, the level-2 switch, dead-list length, live workers and
-- retries waiting.
-- KEYS[1..19]: the common layout   KEYS[20] {p}:workers   KEYS[21] {p}:dead   KEYS[22] {p}:delayed
-- Output: { L1 execute, L1 last, L1 discard, L2 execute, L2 last, L2 discard (counts),
--           oldest age L1, oldest age L2 (ms; -1 when nothing waits), level 2 active (1|0),
--           dead length, live workers, retries waiting }
local now = redisNowMs()

-- The oldest message of a list is at its tail; of a `last` hash, the payload of the key at
-- the tail of its order list (a replaced key keeps its place, so that is the newest payload
-- of the oldest key in line).
local function enqueuedAt(payload)
  return tonumber(string.match(payload, '^{[^{]-"at":(%d+)'))
end

local out = {}
local ages = {}
for level = 1, 2 do
  out[#out + 1] = redis.call('LLEN', qkey(level, 1))
  out[#out + 1] = redis.call('HLEN', qkey(level, 3))
  out[#out + 1] = redis.call('LLEN', qkey(level, 2))
  local oldestKey = redis.call('LINDEX', qkey(level, 4), -1)
  local oldest
  for _, payload in ipairs({
    redis.call('LINDEX', qkey(level, 1), -1) or '',
    redis.call('LINDEX', qkey(level, 2), -1) or '',
    oldestKey and redis.call('HGET', qkey(level, 3), oldestKey) or '',
  }) do
    local at = enqueuedAt(payload)
    if at and (not oldest or at < oldest) then oldest = at end
  end
  ages[level] = oldest and math.max(0, now - oldest) or -1
end
out[#out + 1] = ages[1]
out[#out + 1] = ages[2]
out[#out + 1] = redis.call('GET', KEYS[13]) == '0' and 0 or 1
out[#out + 1] = redis.call('LLEN', KEYS[21])
out[#out + 1] = redis.call('ZCOUNT', KEYS[20], now, '+inf')
out[#out + 1] = redis.call('ZCARD', KEYS[22])
return out
