#!lua flags=no-writes
-- What an operator alerts on, read in one step (read-only): backlog per queue, the age of the
-- oldest waiting message per level, the level-2 switch, dead-list length, live workers and
-- retries waiting.
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L2:active workers delayed dead
-- USES: atMs redisNowMs
-- Output: { L1 execute, L1 last, L1 discard, L2 execute, L2 last, L2 discard (counts),
--           oldest age L1, oldest age L2 (ms; -1 when nothing waits), level 2 active (1|0),
--           dead length, live workers, retries waiting }
local now = redisNowMs()

-- The oldest message of a list is at its tail; of a `last` hash, the payload of the key at
-- the tail of its order list (a replaced key keeps its place, so that is the newest payload
-- of the oldest key in line).
local function enqueuedAt(payload)
  local at = tonumber(string.match(payload, '^{[^{]-"at":(%d+)'))
  return at and atMs(at)
end

local out = {}
local ages = {}
for level = 1, 2 do
  out[#out + 1] = redis.call('LLEN', K['L' .. level .. ':execute'])
  out[#out + 1] = redis.call('HLEN', K['L' .. level .. ':last'])
  out[#out + 1] = redis.call('LLEN', K['L' .. level .. ':discard'])
  local oldestKey = redis.call('LINDEX', K['L' .. level .. ':last:order'], -1)
  local oldest
  for _, payload in ipairs({
    redis.call('LINDEX', K['L' .. level .. ':execute'], -1) or '',
    redis.call('LINDEX', K['L' .. level .. ':discard'], -1) or '',
    oldestKey and redis.call('HGET', K['L' .. level .. ':last'], oldestKey) or '',
  }) do
    local at = enqueuedAt(payload)
    if at and (not oldest or at < oldest) then oldest = at end
  end
  ages[level] = oldest and math.max(0, now - oldest) or -1
end
out[#out + 1] = ages[1]
out[#out + 1] = ages[2]
out[#out + 1] = redis.call('GET', K['L2:active']) == '0' and 0 or 1
out[#out + 1] = redis.call('LLEN', K.dead)
out[#out + 1] = redis.call('ZCOUNT', K.workers, now, '+inf')
out[#out + 1] = redis.call('ZCARD', K.delayed)
return out
