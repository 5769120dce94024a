-- USES:
-- The first of the run tokens a script hands out in one go (one more each after it; the script
-- writes the last it handed out back to {p}:runs, once): one more than the last token handed
-- out, and never behind Redis's clock in microseconds (`clockUs`, from redisClock) — the same
-- sequence as newToken per run, for one read and one write per call instead of one per run.
local function firstToken(clockUs)
  local last = tonumber(redis.call('GET', K.runs)) or 0
  return math.max(last + 1, tonumber(clockUs))
end
