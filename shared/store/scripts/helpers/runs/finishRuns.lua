-- USES: attemptOf count forgetJob forgetNewest groupOf groupRunsEnded jsonString jsonStringEnd releaseByToken releaseKey setWhere whereDone
-- Acknowledges finished runs of the calling worker (its hash K.worker), given in ARGV from index
-- `from` on, in groups of 6: run token, job id, level, coalescing key ('' unless `last`),
-- outcome (done|dropped), status of the answer. Each run leaves the worker's hash, its outcome
-- is counted, its `last` key released and the key's newest message forgotten once it is this
-- one; a finished job is kept for lookup for keepMs (pruneDone forgets it), else forgotten.
-- A run no longer in the hash was taken back already (or acknowledged by an earlier send of
-- the same batch): nothing is counted or released for it, so a repeat counts nothing twice.
-- The caller has checked the lease (finishJobs alone, claimJobs with the acks riding on a
-- claim). The hash is read and written once per call, the counters once per outcome.
-- `claiming`: the settles ride on a claim, which takes the places they free itself (and passes
-- the baton for what it leaves): no idle worker is woken for them.
-- Returns the number of runs acknowledged.
local function finishRuns(from, now, keepMs, claiming)
  -- What a kept job shows: when it finished and how, and the call (read from the payload's
  -- routing fields and the method and url that follow them).
  local function finished(id, payload, status)
    local method, urlAt = string.match(payload, ',"method":"(%a+)","url":()')
    local close = urlAt and jsonStringEnd(payload, urlAt)
    local url = close and jsonString(payload, urlAt, close) or '?'
    local enqueued = string.match(payload, '^{[^{]-"at":(%d+)') or '0'
    setWhere(id, whereDone(now, status, attemptOf(payload), enqueued, method or '?', url))
    redis.call('ZADD', K.done, now, id)
  end

  -- A grouped run is counted in {p}:groups:running while it lives: with none counted, no payload
  -- is read for its group (a deployment without groups pays one EXISTS per call that settles).
  local grouped = from <= #ARGV and redis.call('EXISTS', K['groups:running']) == 1
  local ended = { {}, {} } -- level -> group -> runs: counted down once per group
  local acknowledged = 0
  local tally = {} -- level -> outcome -> runs: one HINCRBY per outcome
  local taken = {}
  local chunk = 6 * 500 -- Lua's unpack takes a few thousand values at most
  for first = from, #ARGV, chunk do
    local tokens = {}
    for i = first, math.min(#ARGV, first + chunk - 1), 6 do tokens[#tokens + 1] = ARGV[i] end
    local payloads = redis.call('HMGET', K.worker, unpack(tokens))
    local held = {}
    for j = 1, #tokens do
      if payloads[j] and not taken[tokens[j]] then
        taken[tokens[j]] = true
        held[#held + 1] = tokens[j]
      else
        payloads[j] = false -- gone, or the same run twice in one call: settled once
      end
    end
    if #held > 0 then redis.call('HDEL', K.worker, unpack(held)) end
    for j = 1, #tokens do
      local payload = payloads[j]
      if payload then
        local i = first + (j - 1) * 6
        local token, id, level, key, outcome = tokens[j], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
        acknowledged = acknowledged + 1
        tally[level] = tally[level] or {}
        tally[level][outcome] = (tally[level][outcome] or 0) + 1
        local group = grouped and groupOf(payload) or nil
        if group then ended[level][group] = (ended[level][group] or 0) + 1 end
        if key ~= '' then
          -- The key comes from the worker's decoding of the payload; should its bytes differ from
          -- the payload's, the run's key is still found (by its token), never held for good.
          if not releaseKey(level, key, token, group) then
            local heldLevel, heldKey = releaseByToken(token)
            if heldKey then key = heldKey end
          end
          forgetNewest({ policy = 'last', level = level, key = key, id = id, group = group })
        end
        if keepMs > 0 then finished(id, payload, ARGV[i + 5]) else forgetJob(id) end
      end
    end
  end
  for level = 1, 2 do
    for group, runs in pairs(ended[level]) do groupRunsEnded(group, level, runs, not claiming) end
  end
  for level, outcomes in pairs(tally) do
    for outcome, n in pairs(outcomes) do count(level, outcome, n) end
  end
  return acknowledged
end
