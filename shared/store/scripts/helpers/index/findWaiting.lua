-- USES: jobId queueKey
-- Finds job `id` in the waiting lists by reading them: a message waiting in a list has no index
-- entry unless its id is the caller's (enqueue.lua; requeued messages keep one too). Reads from
-- the tails (next to run), a thousand entries of each list in turn, at most `budget` entries in
-- all, so no call reads without bound. The named groups' lists are read too (those of the groups
-- in each level's ring: a group with a list that is not empty is there), as many groups as the
-- budget allows, each list counted as one entry read besides its entries. `level` and `policy` (optional, with `group` for a named group's) name the one list to
-- read (an index entry said it waits there).
-- Returns { level, policy, group, payload, position (0: next to run) } when found; else nil and
-- whether every list was read to its end (false: the job may wait further back).
local function findWaiting(id, budget, level, policy, group)
  local lists = {}
  local complete = true
  local scanned = 0
  local function add(l, p, g, key)
    lists[#lists + 1] = { level = l, policy = p, group = g, key = key, length = redis.call('LLEN', key), read = 0 }
  end
  for l = 1, 2 do
    for _, p in ipairs({ 'execute', 'discard' }) do
      if not level then
        add(l, p, nil, queueKey(l, nil, p))
      elseif level == l and policy == p then
        add(l, p, group, queueKey(l, group, p))
      end
    end
    if not level then
      -- Half the budget at most goes to opening groups' lists (two per group).
      local ring = K['L' .. l .. ':groups']
      local most = math.max(1, math.floor(budget / 8))
      if redis.call('ZCARD', ring) > most then complete = false end
      for _, g in ipairs(redis.call('ZRANGE', ring, 0, most - 1)) do
        add(l, 'execute', g, queueKey(l, g, 'execute'))
        add(l, 'discard', g, queueKey(l, g, 'discard'))
        scanned = scanned + 2
      end
    end
  end
  local more = true
  while more and scanned < budget do
    more = false
    for _, list in ipairs(lists) do
      local n = math.min(1000, list.length - list.read, budget - scanned)
      if n > 0 then
        local chunk = redis.call('LRANGE', list.key, -list.read - n, -list.read - 1)
        for i = #chunk, 1, -1 do
          if jobId(chunk[i]) == id then
            return { level = list.level, policy = list.policy, group = list.group, payload = chunk[i], position = list.read + (#chunk - i) }
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
  return nil, complete
end
