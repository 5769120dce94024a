-- USES:
-- Where each job is, for lookup (`switchyard job <id>`), one short string per job:
--   w<level>:<policy>[\n<key>]    waiting in that queue (a `last` message with its key)
--   r<since>:<token>:<worker>      running, claimed at <since> (Redis ms)
--   t<due>                         waiting for its retry (or its delay) until <due>
--   x                              in the dead list
--   d<at>:<status>:<attempt>:<enqueued>:<method>:<url>   finished (kept for --keep-done)
local function setWhere(id, where)
  if id then redis.call('HSET', K.jobs, id, where) end
end
