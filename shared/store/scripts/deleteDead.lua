#!lua flags=allow-oom
-- Removes one dead job, by id, from the dead-letter list: the entry leaves the list, its job the
-- lookup index, and a dead `last` message its key's newest mark (which it keeps while dead), as
-- a purge does for every entry; the others stay. Counted in `dead:deleted`.
-- KEYS: L1:last:newest L2:last:newest stats jobs dead L1:execute L2:execute L1:discard L2:discard L1:last L2:last L1:last:order L2:last:order
-- USES: deadJobOf forgetDead
-- ARGV[1] the job id: an id is never a pattern, '*' included
-- Output: a code of replies.ts: deleted, unknown (no dead job has that id)
local wanted = ARGV[1]
local entries = redis.call('LRANGE', K.dead, 0, -1)
for i = 1, #entries do
  local job = deadJobOf(entries[i])
  if job and job.id == wanted then
    redis.call('LREM', K.dead, 1, entries[i])
    forgetDead(entries[i])
    redis.call('HINCRBY', K.stats, 'dead:deleted', 1)
    return CODE.deleted
  end
end
return CODE.unknown
