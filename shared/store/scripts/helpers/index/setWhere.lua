-- USES:
-- Records where a job is now in the lookup index ({p}:jobs), as an entry of format/placeOf.lua's
-- form (written by the where* helpers of format/).
local function setWhere(id, where)
  if id then redis.call('HSET', K.jobs, id, where) end
end
