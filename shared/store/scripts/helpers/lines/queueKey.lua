-- USES: groupKey
-- A queue of a level: the default group's (group nil: the level's declared keys) or a named
-- group's (groupKey). what: execute, discard, last, last:order, last:newest.
local function queueKey(level, group, what)
  if group then return groupKey(level, group, what) end
  if what == 'execute' then return K['L' .. level .. ':execute'] end
  if what == 'discard' then return K['L' .. level .. ':discard'] end
  if what == 'last' then return K['L' .. level .. ':last'] end
  if what == 'last:order' then return K['L' .. level .. ':last:order'] end
  return K['L' .. level .. ':last:newest']
end
