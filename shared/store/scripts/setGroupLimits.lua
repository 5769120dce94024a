-- Sets or clears a group's run-time limits (`switchyard group <name> --concurrency … --rate …`):
-- one field of {p}:groups:limits, `<concurrency>:<rate per second>`, either part empty for the
-- workers' flag. A part not given keeps its value; the field goes when both parts are empty.
-- A group with work in line wakes an idle worker: a raised cap or rate may let it be claimed now.
-- KEYS: groups:limits L1:groups L2:groups wake:L1 wake:L2
-- USES: wake
-- ARGV[1] group  ARGV[2] concurrency  ARGV[3] rate (each: '' keep, '-' clear, or the number)
-- Output: { the field's value now ('' when none), 1|0 group in the level-1 ring, 1|0 level 2 }
local group, concurrency, rate = ARGV[1], ARGV[2], ARGV[3]
local current = redis.call('HGET', K['groups:limits'], group) or ''
local c, r = string.match(current, '^([^:]*):?(.*)$')
if concurrency == '-' then c = '' elseif concurrency ~= '' then c = concurrency end
if rate == '-' then r = '' elseif rate ~= '' then r = rate end
local value = ''
if c == '' and r == '' then
  redis.call('HDEL', K['groups:limits'], group)
else
  value = c .. ':' .. r
  redis.call('HSET', K['groups:limits'], group, value)
end
local out = { value }
for level = 1, 2 do
  local inRing = redis.call('ZSCORE', K['L' .. level .. ':groups'], group) and 1 or 0
  if inRing == 1 then wake(level) end
  out[#out + 1] = inRing
end
return out
