-- USES:
-- Everything of a level that waits, in line or for its time: the level-2 switch and the
-- discard threshold count a delayed message as waiting (else a delay would bypass both), and
-- the named groups' waiting messages (counted in {p}:stats as "L<level>:grouped").
local function backlog(level)
  local counted = redis.call('HMGET', K.stats, 'L' .. level .. ':delayed', 'L' .. level .. ':grouped')
  return redis.call('LLEN', K['L' .. level .. ':execute']) + redis.call('LLEN', K['L' .. level .. ':discard']) + redis.call('HLEN', K['L' .. level .. ':last'])
    + (tonumber(counted[1]) or 0) + (tonumber(counted[2]) or 0)
end
