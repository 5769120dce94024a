-- Acknowledges finished jobs of one worker: removes them from its hash, counts the outcome,
-- and ends the run of their `last` keys. A job no longer in the hash was taken back by
-- recovery (its lease expired): nothing is counted or released for it.
-- KEYS[1..13]: the common layout   KEYS[14] {p}:worker:<id>
-- ARGV: groups of 4: job id, level, coalescing key ('' unless `last`), outcome (done|dropped)
-- Output: number of jobs acknowledged
local acknowledged = 0
for i = 1, #ARGV, 4 do
  local id, level, key, outcome = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  if redis.call('HDEL', KEYS[14], id) == 1 then
    acknowledged = acknowledged + 1
    count(level, outcome)
    if key ~= '' then releaseKey(level, key) end
  end
end
return acknowledged
