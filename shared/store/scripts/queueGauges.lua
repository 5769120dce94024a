#!lua flags=no-writes
-- What an operator alerts on, read in one step (read-only): backlog per queue, the age of the
-- oldest waiting message per level, the level-2 switch, dead-list length, live workers and
-- retries waiting.
-- KEYS: L1:execute L1:discard L1:last L1:last:order L2:execute L2:discard L2:last L2:last:order L2:active workers delayed dead L1:groups L2:groups stats
-- USES: atMs groupKey redisNowMs
-- Output: { L1 execute, L1 last, L1 discard, L2 execute, L2 last, L2 discard (counts, the
--           default group's queues),
--           oldest age L1, oldest age L2 (ms; -1 when nothing waits: the default group's and the
--           64 named groups next in turn, read at their tails), level 2 active (1|0),
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
  local function consider(payload)
    local at = enqueuedAt(payload or '')
    if at and (not oldest or at < oldest) then oldest = at end
  end
  consider(redis.call('LINDEX', K['L' .. level .. ':execute'], -1))
  consider(redis.call('LINDEX', K['L' .. level .. ':discard'], -1))
  consider(oldestKey and redis.call('HGET', K['L' .. level .. ':last'], oldestKey))
  -- The groups served longest ago hold the oldest grouped messages, as a rule (bounded: 64).
  for _, group in ipairs(redis.call('ZRANGE', K['L' .. level .. ':groups'], 0, 63)) do
    consider(redis.call('LINDEX', groupKey(level, group, 'execute'), -1))
    consider(redis.call('LINDEX', groupKey(level, group, 'discard'), -1))
    local key = redis.call('LINDEX', groupKey(level, group, 'last:order'), -1)
    consider(key and redis.call('HGET', groupKey(level, group, 'last'), key))
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
