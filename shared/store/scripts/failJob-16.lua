-- Settles a job that failed: schedules its retry, or buries it in the dead-letter list.
-- KEYS[1..13]: the common layout   KEYS[14] {p}:worker:<id>   KEYS[15] {p}:delayed (zset, due ms)
-- KEYS[16] {p}:dead
-- ARGV[1] job id  ARGV[2] level  ARGV[3] coalescing key ('' unless `last`)  ARGV[4] retry|dead
-- ARGV[5] payload of the retry (attempt + 1)  ARGV[6] due time (ms)  ARGV[7] dead entry JSON
-- ARGV[8] dead-letter cap
-- Output: 0 not this worker's any more, 1 retry scheduled, 2 buried, 3 retry dropped (newer message)
local id, level, key, action = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if redis.call('HDEL', KEYS[14], id) == 0 then return 0 end
if key ~= '' then releaseKey(level, key) end

if action == 'retry' then
  if key ~= '' and (redis.call('HEXISTS', qkey(level, 3), key) == 1) then
    count(level, 'superseded')
    return 3
  end
  redis.call('ZADD', KEYS[15], ARGV[6], ARGV[5])
  count(level, 'retried')
  return 1
end
bury(KEYS[16], ARGV[7], level, tonumber(ARGV[8]))
return 2
