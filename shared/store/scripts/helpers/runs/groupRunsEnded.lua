-- USES: wake
-- n runs of a named group (of `level`) left their worker's hash: the group has n runs less,
-- counted in the same step, so the cap counts live runs exactly (the field goes at 0). When that
-- frees places of a group with work in line, an idle worker is woken to take them, unless
-- `wakeFreed` is false (a claim that takes them itself).
local function groupRunsEnded(group, level, n, wakeFreed)
  if redis.call('HINCRBY', K['groups:running'], group, -n) <= 0 then redis.call('HDEL', K['groups:running'], group) end
  if wakeFreed and level and redis.call('ZSCORE', K['L' .. level .. ':groups'], group) then wake(level) end
end
