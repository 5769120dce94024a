#!lua flags=allow-oom
-- Pauses or resumes a level: a paused level still accepts messages, but no worker claims it.
-- Resuming wakes an idle worker, which passes the baton on while work is left.
-- KEYS: L1:execute L1:discard L1:last:order L2:execute L2:discard L2:last:order wake:L1 wake:L2 paused L1:groups L2:groups
-- USES: claimable wake
-- ARGV[1] level (1|2)  ARGV[2] pause|resume
-- Output: 1 when the state changed, 0 when it already was so
local level = tonumber(ARGV[1])
if ARGV[2] == 'pause' then return redis.call('HSET', K.paused, 'L' .. level, '1') end
local changed = redis.call('HDEL', K.paused, 'L' .. level)
if claimable(level) then wake(level) end
return changed
