#!lua flags=no-writes
-- Workers whose lease ran out, on Redis's clock (read-only).
-- KEYS[1..19]: the common layout (unused)   KEYS[20] {p}:workers
-- ARGV[1] most ids returned
-- Output: worker ids
return redis.call('ZRANGEBYSCORE', KEYS[20], '-inf', '(' .. redisNowMs(), 'LIMIT', 0, tonumber(ARGV[1]))
