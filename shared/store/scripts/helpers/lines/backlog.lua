-- USES:
-- Everything of a level that waits, in line or for its time: the level-2 switch and the
-- discard threshold count a delayed message as waiting (else a delay would bypass both).
local function backlog(level)
  return redis.call('LLEN', K['L' .. level .. ':execute']) + redis.call('LLEN', K['L' .. level .. ':discard']) + redis.call('HLEN', K['L' .. level .. ':last'])
    + (tonumber(redis.call('HGET', K.stats, 'L' .. level .. ':delayed')) or 0)
end
