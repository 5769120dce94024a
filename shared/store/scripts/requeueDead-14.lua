-- Moves dead jobs back into their queues with a fresh attempt count: the one whose id is
-- given, or all of them (id '*'), oldest first.
-- KEYS[1..13]: the common layout   KEYS[14] {p}:dead
-- ARGV[1] job id or '*'
-- Output: number of jobs requeued
local wanted = ARGV[1]
local entries = redis.call('LRANGE', KEYS[14], 0, -1)
local moved = 0
for i = #entries, 1, -1 do
  local entry = entries[i]
  local job = cjson.decode(entry).job
  if job and (wanted == '*' or tostring(job.id) == wanted) then
    -- The payload sits verbatim after "job": at the end of the entry.
    local payload = setAttempt(string.match(entry, '"job":({.*})}$'), 1)
    if wanted ~= '*' then redis.call('LREM', KEYS[14], 1, entry) end
    if requeue(payload, tonumber(job.level), job.policy or 'execute', job.key, false) then moved = moved + 1 end
    if wanted ~= '*' then break end
  end
end
-- One DEL rather than an LREM per entry: with the default cap of 10,000 those would scan the
-- list 10,000 times inside one script.
if wanted == '*' then redis.call('DEL', KEYS[14]) end
return moved
