// Each stored format has one owner per language: shared/store/format/ in TypeScript, the helpers
// of scripts/helpers/format/ in Lua. These round-trip random jobs between the two on a real
// Redis: a payload written by the gateway's encoder is routed by the Lua as the TypeScript
// reader routes it, a retry's attempt set by the Lua decodes to the same call, a dead entry
// written by the Lua is the document the TypeScript writes and reads back (and its job comes out byte for byte on both
// sides), and every index entry form is written alike by both and read back by the other.
import fc from 'fast-check';
import { parseParams, type CallRequest } from '../../shared/call/params';
import { deadPayloadOf, encodeDeadEntry, readDeadEntry } from '../../shared/store/format/dead-entry';
import { readIndexEntry, writeIndexEntry, type IndexEntry } from '../../shared/store/format/index-entry';
import { AT_EPOCH_MS, atMs, decodeJob, encodeJob, jobIdOf, newJobId, readCall, routeOf, storedAt } from '../../shared/store/format/job';
import { buildScript, loadHelpers } from '../../shared/store/scripts';
import { PARAMS_LIMITS, suiteRedis } from '../helpers/store-calls';

const suite = suiteRedis();

// One probe script built by the loader from the real helpers, as every script is.
const PROBE = buildScript(
  'formatProbe',
  `-- KEYS:
-- USES: atMs atStamp attemptOf deadEntry deadPayloadOf jobId placeOf routeOf setAttempt whereDead whereDone whereDue whereRunning whereWaiting
local op = ARGV[1]
local function num(n) return n and string.format('%.0f', n) or false end
if op == 'route' then
  local r = routeOf(ARGV[2])
  if not r then return false end
  return { r.id, num(r.at), num(r.level), r.policy, r.key or false, num(r.ttl), num(r.attempts), num(attemptOf(ARGV[2])) }
elseif op == 'atStamp' then
  return atStamp(tonumber(ARGV[2]))
elseif op == 'atMs' then
  return num(atMs(tonumber(ARGV[2])))
elseif op == 'jobId' then
  return jobId(ARGV[2]) or false
elseif op == 'setAttempt' then
  return setAttempt(ARGV[2], tonumber(ARGV[3]))
elseif op == 'deadEntry' then
  return deadEntry(ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6]))
elseif op == 'deadPayload' then
  return deadPayloadOf(ARGV[2]) or false
elseif op == 'where' then
  local kind = ARGV[2]
  if kind == 'waiting' then return whereWaiting(tonumber(ARGV[3]), ARGV[4], ARGV[5]) end
  if kind == 'running' then return whereRunning(ARGV[3], ARGV[4], ARGV[5]) end
  if kind == 'due' then return whereDue(ARGV[3]) end
  if kind == 'dead' then return whereDead() end
  return whereDone(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
elseif op == 'place' then
  local p = placeOf(ARGV[2])
  if not p then return false end
  return { p.kind, num(p.level) or '', p.policy or '', p.key or '', num(p.since) or '', p.token or '', p.worker or '', p.due or '' }
end
`,
  loadHelpers(),
);

/** Bytes as the scripts see them: a JS string's UTF-8, one latin1 character per byte. */
const bytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

type Reply = string | number | null | Reply[];
function fromRedis(reply: unknown): Reply {
  if (Buffer.isBuffer(reply)) return reply.toString('latin1');
  if (Array.isArray(reply)) return reply.map(fromRedis);
  if (typeof reply === 'number') return reply;
  return null;
}

/** Runs the probe; arguments are byte strings (latin1), replies come back as byte strings. */
async function probe(...args: Array<string | number>): Promise<Reply> {
  const argv = args.map((a) => Buffer.from(String(a), 'latin1'));
  return fromRedis(await suite.redis.callBuffer('EVAL', PROBE.lua, 0, ...argv));
}

// Calls as the gateway parses them: any text in url, headers, key and content (no lone
// surrogates: the gateway refuses those), every queue option present or not.
const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const callArb: fc.Arbitrary<CallRequest> = fc
  .record(
    {
      url: text.map((t) => `/${t}`),
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
      headers: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), text, { maxKeys: 2 }),
      content: fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 3 })),
      timeout: fc.integer({ min: 1, max: 600 }),
      level: fc.constantFrom(1, 2),
      policy: fc.constantFrom('execute', 'last', 'discard'),
      key: text.filter((k) => k.length > 0),
      ttl: fc.integer({ min: 1, max: 86_400 }),
      attempts: fc.integer({ min: 1, max: 100 }),
      backoff: fc.integer({ min: 0, max: 3600 }),
    },
    { requiredKeys: ['url', 'method', 'level', 'policy', 'key'] },
  )
  .map((r) => {
    try {
      return parseParams(
        JSON.stringify({
          url: r.url,
          method: r.method,
          reply: false,
          ...(r.headers && { headers: r.headers }),
          ...(r.content !== undefined && { content: r.content }),
          ...(r.timeout !== undefined && { timeout: r.timeout }),
          queue_detail: {
            level: r.level,
            limit_policy: r.policy,
            ...(r.policy === 'last' && { key: r.key }),
            ...(r.ttl !== undefined && { ttl: r.ttl }),
            ...(r.attempts !== undefined && { attempts: r.attempts }),
            ...(r.backoff !== undefined && { backoff: r.backoff }),
          },
        }),
        PARAMS_LIMITS,
      );
    } catch {
      return null; // a url the gateway refuses (a space, a fragment): not a job
    }
  })
  .filter((call): call is CallRequest => call !== null);

/** A payload as stored: the gateway's encoding with the enqueue time the script stamps. */
const stored = (call: CallRequest, at: number): string => encodeJob(newJobId(), call).replace('"at":0,', `"at":${at},`);

test('a payload: the Lua routes it as the TypeScript reads it, and a retry attempt set in Lua decodes to the same call', async () => {
  await fc.assert(
    fc.asyncProperty(callArb, fc.integer({ min: 1, max: 2 ** 41 }), fc.integer({ min: 1, max: 1000 }), async (call, at, attempt) => {
      const payload = stored(call, at);
      const job = decodeJob(1, payload);
      const route = routeOf(bytes(payload))!;
      expect(route).not.toBeNull();
      // The TypeScript reader of the scripts' view agrees with the decoder the worker uses…
      expect([route.id, route.at, route.level, route.policy, route.attempt]).toEqual([job.id, job.at, job.level, job.policy, job.attempt]);
      expect(route.key).toEqual(job.key === null ? undefined : bytes(job.key));
      expect(route.attempts).toEqual(job.attempts ?? undefined);
      // … and the Lua reads the same fields, byte for byte.
      const ttl = call.queue!.ttlMs;
      expect(await probe('route', bytes(payload))).toEqual([
        route.id,
        String(atMs(at)),
        String(route.level),
        route.policy,
        route.key ?? null,
        ttl === undefined ? null : String(ttl),
        route.attempts === undefined ? null : String(route.attempts),
        '1',
      ]);
      expect(await probe('jobId', bytes(payload))).toBe(jobIdOf(bytes(payload)));
      // A retry: the attempt changes in place, the rest of the call is untouched.
      const retried = Buffer.from((await probe('setAttempt', bytes(payload), attempt)) as string, 'latin1').toString('utf8');
      expect(decodeJob(7, retried)).toEqual({ ...job, attempt, token: 7, payload: retried });
      expect(routeOf(bytes(retried))!.attempt).toBe(attempt);
      expect(await probe('setAttempt', bytes(retried), attempt + 1)).toBe(bytes(retried).replace(`{"attempt":${attempt},`, `{"attempt":${attempt + 1},`));
    }),
    { numRuns: 200 },
  );
});

test('the enqueue time: the Lua stamps what the TypeScript reads back, and the previous form (Unix ms) reads the same', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: AT_EPOCH_MS + 1, max: AT_EPOCH_MS + 2 ** 39 }), async (ms) => {
      const at = (await probe('atStamp', ms)) as string;
      expect(at).toBe(String(storedAt(ms)));
      expect(at.length).toBeLessThan(String(ms).length);
      expect(atMs(Number(at))).toBe(ms);
      expect(await probe('atMs', at)).toBe(String(ms));
      // A payload written before: "at" in Unix ms, read as it was by both sides.
      expect(atMs(ms)).toBe(ms);
      expect(await probe('atMs', ms)).toBe(String(ms));
      const old = `{"id":"old1","at":${ms},"level":1,"method":"GET","url":"/x"}`;
      const fresh = old.replace(`"at":${ms}`, `"at":${at}`);
      for (const payload of [old, fresh]) {
        expect([routeOf(payload)!.at, decodeJob(1, payload).at, readCall(payload).at]).toEqual([ms, ms, ms]);
        expect(((await probe('route', payload)) as string[])[1]).toBe(String(ms));
      }
    }),
    { numRuns: 100 },
  );
  // A Redis clock before the epoch stamps Unix ms, which both sides read as such.
  for (const ms of [AT_EPOCH_MS, AT_EPOCH_MS - 86_400_000]) {
    expect(await probe('atStamp', ms)).toBe(String(ms));
    expect([storedAt(ms), atMs(ms), await probe('atMs', ms)]).toEqual([ms, ms, String(ms)]);
  }
  // Not stamped (the gateway's 0) stays 0 on both sides; readCall shows no time for it.
  expect([atMs(0), await probe('atMs', 0), readCall('{"id":"a","at":0,"level":1}').at]).toEqual([0, '0', undefined]);
});

test('a dead entry: the Lua writes the document the TypeScript writes, read back on both sides with the job byte for byte', async () => {
  await fc.assert(
    fc.asyncProperty(
      callArb,
      fc.integer({ min: 1, max: 50 }),
      fc.oneof(fc.constant(null), fc.integer({ min: 400, max: 599 }).map(String)),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.integer({ min: 1, max: 2 ** 41 }),
      async (call, attempts, status, error, failedAt) => {
        const payload = stored(call, failedAt);
        const entry = (await probe('deadEntry', bytes(payload), attempts, status ?? '', bytes(error), failedAt)) as string;
        const text = Buffer.from(entry, 'latin1').toString('utf8');
        // The same document (cjson escapes '/' where JSON.stringify does not), the job verbatim.
        expect(JSON.parse(text)).toEqual(JSON.parse(encodeDeadEntry(payload, attempts, status, error, failedAt)));
        expect(text.endsWith(`,"job":${payload}}`)).toBe(true);
        const job = decodeJob(1, payload);
        expect(readDeadEntry(text)).toEqual({ id: job.id, level: job.level, method: job.method, url: job.url, attempts, status, error, failedAt });
        expect(deadPayloadOf(entry)).toBe(bytes(payload));
        expect(await probe('deadPayload', entry)).toBe(bytes(payload));
      },
    ),
    { numRuns: 200 },
  );
});

const entryArb: fc.Arbitrary<IndexEntry> = fc.oneof(
  fc.record({
    kind: fc.constant('waiting' as const),
    level: fc.constantFrom(1 as const, 2 as const),
    policy: fc.constantFrom('execute' as const, 'discard' as const),
  }),
  fc.record({
    kind: fc.constant('waiting' as const),
    level: fc.constantFrom(1 as const, 2 as const),
    policy: fc.constant('last' as const),
    key: text.map(bytes),
  }),
  fc.record({
    kind: fc.constant('running' as const),
    since: fc.integer({ min: 0, max: 2 ** 41 }),
    token: fc.bigInt({ min: 1n, max: 10n ** 16n }).map(String),
    worker: fc.stringMatching(/^[A-Za-z0-9._:/-]{1,40}$/),
  }),
  fc.record({ kind: fc.constant('due' as const), due: fc.integer({ min: 0, max: 2 ** 41 }) }),
  fc.record({ kind: fc.constant('dead' as const) }),
  fc.record({
    kind: fc.constant('done' as const),
    at: fc.integer({ min: 0, max: 2 ** 41 }),
    status: fc.integer({ min: 100, max: 599 }).map(String),
    attempt: fc.integer({ min: 1, max: 100 }),
    enqueued: fc.integer({ min: 0, max: 2 ** 41 }),
    method: fc.constantFrom('GET', 'POST', 'PATCH'),
    url: text.map((t) => bytes(`/${t}`)),
  }),
);

test('an index entry: every form is written alike by the Lua and the TypeScript, and each reads the other back', async () => {
  await fc.assert(
    fc.asyncProperty(entryArb, async (entry) => {
      const written = writeIndexEntry(entry);
      const args: Array<string | number> =
        entry.kind === 'waiting'
          ? [entry.level, entry.policy, entry.policy === 'last' ? entry.key : '']
          : entry.kind === 'running'
            ? [entry.since, entry.token, entry.worker]
            : entry.kind === 'due'
              ? [entry.due]
              : entry.kind === 'done'
                ? [entry.at, entry.status, entry.attempt, entry.enqueued, entry.method, entry.url]
                : [];
      expect(await probe('where', entry.kind, ...args)).toBe(written);
      expect(readIndexEntry(written)).toEqual(entry);
      const [kind, level, policy, key, since, token, worker, due] = (await probe('place', written)) as string[];
      expect(kind).toBe(entry.kind);
      if (entry.kind === 'waiting') expect([level, policy, key]).toEqual([String(entry.level), entry.policy, entry.policy === 'last' ? entry.key : '']);
      if (entry.kind === 'running') expect([since, token, worker]).toEqual([String(entry.since), entry.token, entry.worker]);
      if (entry.kind === 'due') expect(due).toBe(String(entry.due));
    }),
    { numRuns: 300 },
  );
  // Entries of no known form are nothing to both readers.
  for (const odd of ['', 'w', 'wL3:execute', 'wL1:lastx', 'wL1:execute\nk', 'r1:2', 'rx:1:w', 't', 't1x', 'xx', 'd', 'dx:'])
    expect([odd, readIndexEntry(odd), await probe('place', odd)]).toEqual([odd, null, null]);
});
