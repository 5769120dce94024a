#!lua flags=allow-oom
-- Pauses or resumes a level: a paused level still accepts messages, but no worker claims it.
-- Resuming wakes an idle worker, which passes the baton on while work is left.
-- KEYS[1..19]: the common layout
-- ARGV[1] level (1|2)  ARGV[2] pause|resume
-- Output: 1 when the state changed, 0 when it already was so
local level = tonumber(ARGV[1])
if ARGV[2] == 'pause' then return redis.call('HSET', KEYS[18], 'L' .. level, '1') end
local changed = redis.call('HDEL', KEYS[18], 'L' .. level)
if claimable(level) then wake(level) end
return changed
