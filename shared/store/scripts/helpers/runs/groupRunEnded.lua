-- USES: groupOf wake
-- A run of payload left its worker's hash (finished, failed, handed back): its group has one run
-- less, counted in the same step, so the cap counts live runs exactly. When that frees a place
-- of a group with work in line, an idle worker is woken to take it (unless `wakeFreed` is false: the
-- caller takes it). The default group is not counted.
local function groupRunEnded(payload, wakeFreed)
  local group = groupOf(payload)
  if not group then return end
  if redis.call('HINCRBY', K['groups:running'], group, -1) <= 0 then redis.call('HDEL', K['groups:running'], group) end
  local level = tonumber(string.match(payload, '"level":([12])'))
  if wakeFreed ~= false and level and redis.call('ZSCORE', K['L' .. level .. ':groups'], group) then wake(level) end
end
