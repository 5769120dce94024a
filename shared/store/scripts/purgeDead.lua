#!lua flags=allow-oom
-- Empties the dead-letter list; its jobs leave the lookup index (and a `last` key's newest
-- mark, which a dead message keeps) with it.
-- KEYS: L1:last:newest L2:last:newest jobs dead stats L1:execute L2:execute L1:discard L2:discard L1:last L2:last L1:last:order L2:last:order
-- USES: forgetDead
-- Output: number of entries removed
local entries = redis.call('LRANGE', K.dead, 0, -1)
for _, entry in ipairs(entries) do forgetDead(entry) end
redis.call('DEL', K.dead)
return #entries
