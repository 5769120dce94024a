#!lua flags=allow-oom
-- Forgets the rate limiters of groups that have been idle long enough for their limiter to say
-- nothing any more ({p}:groups:tat fields whose time lies more than ARGV[2] ms behind Redis's
-- clock: a limiter time that far back is what no limiter at all means, for any rate slower than
-- one run per 2 × ARGV[2] ms that is still in force). Without this, every group ever limited
-- would keep its field. Run by every worker's chore, a thousand fields a call (HSCAN).
-- KEYS: groups:tat
-- USES: redisNowMs
-- ARGV[1] HSCAN cursor ('0' to start)   ARGV[2] idle time after which a limiter is forgotten (ms)
-- Output: the next cursor ('0': the hash was read to its end)
local before = redisNowMs() - tonumber(ARGV[2])
local reply = redis.call('HSCAN', K['groups:tat'], ARGV[1], 'COUNT', 1000)
local fields, stale = reply[2], {}
for i = 1, #fields, 2 do
  if (tonumber(fields[i + 1]) or 0) < before then stale[#stale + 1] = fields[i] end
end
if #stale > 0 then redis.call('HDEL', K['groups:tat'], unpack(stale)) end
return reply[1]
