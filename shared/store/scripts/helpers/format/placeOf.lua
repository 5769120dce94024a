-- USES:
-- The lookup index entry ({p}:jobs, job id -> where the job is now), one short string per job:
--   wL<level>:<policy>[@<group>][\n<key>]   waiting in that queue, or that group's (a `last` message with its key)
--   r<since>:<token>:<worker>     running, claimed at <since> (Redis ms), as run <token>
--   t<due>                        waiting for its retry (or its delay) until <due> (Redis ms)
--   x                             in the dead list
--   d<at>:<status>:<attempt>:<enqueued>:<method>:<url>   finished at <at> (kept for --keep-done)
-- Written by whereWaiting, whereRunning, whereDue, whereDead and whereDone; read here, and in
-- TypeScript by shared/store/format/index-entry.ts. Returns a table with `kind` (waiting,
-- running, due, dead, done) and that kind's fields, or nil for an entry of no known form.
local function placeOf(where)
  local kind = string.sub(where, 1, 1)
  if kind == 'w' then
    local level, policy, rest = string.match(where, '^wL([12]):(%a+)()')
    if not level then return nil end
    local group, after = string.match(where, '^@([%w_.:@/+=-]+)()', rest)
    if group then rest = after end
    if policy == 'last' then
      if string.sub(where, rest, rest) ~= '\n' then return nil end
      return { kind = 'waiting', level = tonumber(level), policy = policy, key = string.sub(where, rest + 1), group = group }
    end
    if rest <= #where or (policy ~= 'execute' and policy ~= 'discard') then return nil end
    return { kind = 'waiting', level = tonumber(level), policy = policy, group = group }
  elseif kind == 'r' then
    local since, token, worker = string.match(where, '^r(%d+):(%d+):(.+)$')
    if not since then return nil end
    return { kind = 'running', since = tonumber(since), token = token, worker = worker }
  elseif kind == 't' then
    local due = string.match(where, '^t(%d+)$')
    if not due then return nil end
    return { kind = 'due', due = due }
  elseif where == 'x' then
    return { kind = 'dead' }
  elseif string.match(where, '^d%d+:') then
    return { kind = 'done' }
  end
  return nil
end
