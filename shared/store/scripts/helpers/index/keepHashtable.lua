-- USES:
-- Keeps the lookup index ({p}:jobs) a hashtable. Small, it would be a listpack, where every write
-- reads the whole hash: with a hundred runs in it (the index holds no waiting message of the
-- gateway's, so under load it is small), a claim's or a finish's write costs microseconds more.
-- A field no job id can be (ids hold no ':', format/index-entry.ts INDEX_KEEPER) with a value
-- longer than Redis's hash-max-listpack-value (64 by default) turns it into a hashtable, which
-- Redis never turns back. Set once; later calls leave it as it is. Called by the pruning chore
-- (every worker, each second) and by an enqueue into an empty list.
local function keepHashtable()
  redis.call('HSETNX', K.jobs, ':hashtable', 'not a job: this value, longer than hash-max-listpack-value, keeps the lookup index a hashtable (docs/design.md, Keys)')
end
