#!lua flags=allow-oom
-- Wakes an idle worker of a deployment of several partitions: idle workers block on the
-- deployment's wake keys (one slot), which a partition's scripts cannot reach on a Cluster.
-- At most one marker per list: no growth while workers are busy.
-- The wake keys are the deployment's, under its plain tag {prefix}.
-- KEYS: wake:L1 wake:L2
-- USES:
-- ARGV[1] level (1|2)
-- Output: 1 when a marker was pushed, 0 when one was already waiting
local marker = K['wake:L' .. tonumber(ARGV[1])]
if redis.call('LLEN', marker) > 0 then return 0 end
redis.call('LPUSH', marker, '1')
return 1
