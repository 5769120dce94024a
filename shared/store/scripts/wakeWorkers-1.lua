#!lua flags=allow-oom
-- Wakes an idle worker of a deployment of several partitions: idle workers block on the
-- deployment's wake keys (one slot), which a partition's scripts cannot reach on a Cluster.
-- At most one marker per list: no growth while workers are busy.
-- KEYS[1] {p}:wake:L<level>
-- Output: 1 when a marker was pushed, 0 when one was already waiting
if redis.call('LLEN', KEYS[1]) > 0 then return 0 end
redis.call('LPUSH', KEYS[1], '1')
return 1
