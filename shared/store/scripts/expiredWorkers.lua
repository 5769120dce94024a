#!lua flags=no-writes
-- Workers whose lease ran out, on Redis's clock (read-only).
-- KEYS: workers
-- USES: redisNowMs
-- ARGV[1] most ids returned
-- Output: worker ids
return redis.call('ZRANGEBYSCORE', K.workers, '-inf', '(' .. redisNowMs(), 'LIMIT', 0, tonumber(ARGV[1]))
