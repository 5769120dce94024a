-- USES:
-- A key of a named group's queues in this partition: <tag>:L<level>:g:<group>:<what> (what:
-- execute, discard, last, last:order, last:newest). Built here from the partition's tag (the
-- name of its stats key less "stats"), so it is in the same slot as every declared key.
local function groupKey(level, group, what)
  return string.sub(K.stats, 1, -6) .. 'L' .. level .. ':g:' .. group .. ':' .. what
end
