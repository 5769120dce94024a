-- USES: jobId
-- Finds job `id` in the waiting lists by reading them: a message waiting in a list has no index
-- entry unless its id is the caller's (enqueue.lua; requeued messages keep one too). Reads from
-- the tails (next to run), a thousand entries of each list in turn, at most `budget` entries in
-- all, so no call reads without bound. `level` and `policy` (optional) name the one list to read
-- (an index entry said it waits there).
-- Returns { level, policy, payload, position (0: next to run) } when found; else nil and whether
-- every list was read to its end (false: the job may wait further back).
local function findWaiting(id, budget, level, policy)
  local lists = {}
  for l = 1, 2 do
    for _, p in ipairs({ 'execute', 'discard' }) do
      if not level or (level == l and policy == p) then
        local key = (p == 'discard' and K['L' .. l .. ':discard'] or K['L' .. l .. ':execute'])
        lists[#lists + 1] = { level = l, policy = p, key = key, length = redis.call('LLEN', key), read = 0 }
      end
    end
  end
  local scanned, more = 0, true
  while more and scanned < budget do
    more = false
    for _, list in ipairs(lists) do
      local n = math.min(1000, list.length - list.read, budget - scanned)
      if n > 0 then
        local chunk = redis.call('LRANGE', list.key, -list.read - n, -list.read - 1)
        for i = #chunk, 1, -1 do
          if jobId(chunk[i]) == id then
            return { level = list.level, policy = list.policy, payload = chunk[i], position = list.read + (#chunk - i) }
          end
        end
        list.read, scanned = list.read + n, scanned + #chunk
        more = more or list.read < list.length
      end
    end
  end
  for _, list in ipairs(lists) do
    if list.read < list.length then return nil, false end
  end
  return nil, true
end
