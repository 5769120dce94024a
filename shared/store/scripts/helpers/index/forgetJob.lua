-- USES:
local function forgetJob(id)
  if id then redis.call('HDEL', K.jobs, id) end
end
