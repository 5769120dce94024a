#!lua flags=allow-oom
-- Empties the dead-letter list; its jobs leave the lookup index (and a `last` key's newest
-- mark, which a dead message keeps) with it.
-- KEYS[1..19]: the common layout   KEYS[20] {p}:dead
-- Output: number of entries removed
local entries = redis.call('LRANGE', KEYS[20], 0, -1)
for _, entry in ipairs(entries) do forgetDead(entry) end
redis.call('DEL', KEYS[20])
return #entries
