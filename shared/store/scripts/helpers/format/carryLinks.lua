-- USES:
-- A traced `last` message that supersedes a waiting (or delayed) one carries the superseded
-- message's trace context (and the contexts it carried) as "links", newest first, at most 8
-- (MAX_LINKS of format/job.ts), so the run of the newest message is linked to every call it
-- stands for.
-- Both payloads are read only before their "method" field: the routing and trace fields,
-- never the caller's content. Returns `payload` unchanged when `old` carries no context.
local function carryLinks(payload, old)
  local oldEnd = string.find(old, ',"method":"', 1, true)
  local at = string.find(payload, ',"method":"', 1, true)
  if not oldEnd or not at then return payload end
  local head = string.sub(old, 1, oldEnd)
  local contexts = {}
  local trace = string.match(head, ',"trace":"([%x%-]+)"')
  if trace then contexts[1] = '"' .. trace .. '"' end
  local carried = string.match(head, ',"links":%[([^%]]*)%]')
  if carried then
    for link in string.gmatch(carried, '"[%x%-]+"') do
      if #contexts == 8 then break end
      contexts[#contexts + 1] = link
    end
  end
  if #contexts == 0 then return payload end
  return string.sub(payload, 1, at - 1) .. ',"links":[' .. table.concat(contexts, ',') .. ']' .. string.sub(payload, at)
end
