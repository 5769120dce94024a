// Params fuzzed over the wire: a real gRPC client against a real gateway process, sync and
// async calls, with Redis up, stopped and back. Every answer is an Output whose status_code has
// three digits; no 5xx but the 503 of an async call while Redis is stopped (and the 504 of a sync
// call whose own timeout is shorter than its route); the process is alive at the end.
import path from 'node:path';
import fc from 'fast-check';
import { call, closeClients, rawCall } from '../../client';
import { startDebugRedis, type DebugRedis } from '../helpers/debug-redis';
import { killAll, startSwitchyard, waitFor, type SwitchyardProcess } from '../helpers/processes';
import { uniquePrefix } from '../helpers/redis';
import { expectCleanRedis, failureOf } from '../helpers/check-state';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
const report = (line: string): void => void process.stderr.write(`[params-fuzz] ${line}\n`);

let redis: DebugRedis;
let gateway: SwitchyardProcess;
let address: string;
const prefix = uniquePrefix('fuzz');

beforeAll(async () => {
  redis = await startDebugRedis();
  gateway = await startSwitchyard('gateway', ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--port', '0', '--host', '127.0.0.1']);
  address = `127.0.0.1:${gateway.ready.port}`;
});
afterAll(async () => {
  closeClients();
  await killAll();
  const problems = await failureOf(expectCleanRedis(redis.url));
  await redis.close();
  if (problems) throw problems;
});

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 10 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.string({ unit: fc.constantFrom('\ud800', '\udfff', '\u0000', '\u007f', '\u200b', '\uffff', 'a', '/', '%', '?', '#', ' ', '.', '\\'), maxLength: 8 }),
  fc.constantFrom('k\ud800', '%ZZ', '%', '..', '%2e%2e/', '\ud83d\ude00', '__proto__', 'constructor'),
);
const number = fc.oneof(
  fc.constantFrom(0, -0, 1e-320, 0.0004, 0.001, 0.5, 1, 3, 2 ** 53 + 1, 1e18, 1e306, 1e308, -1, 86_400, 2_592_000, 2_592_001, 1000, 1001),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constant('1e999'),
);
const odd = fc.oneof(text, number, fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));

/**
 * Routes of the test app that answer 5xx or wait by design (POST /fail, GET /slow, POST /record
 * without a recorder in the gateway process): sync calls stay off them.
 */
const BUSY_ROUTE = /^\/(fail|slow|record)/i;
const syncUrl = fc
  .oneof(
    fc.constantFrom('/ping', '/ping?x=1', '/nope', '/'),
    text.map((t) => `/ping${t}`),
    text.map((t) => `/${t}`),
    odd,
  )
  .filter((u) => typeof u !== 'string' || !BUSY_ROUTE.test(u));

/** Values a field accepts, at the edges of its range, and text from every Unicode class that is well-formed. */
const goodText = text.filter((t) => (t as string & { isWellFormed(): boolean }).isWellFormed());
const seconds = (max: number): fc.Arbitrary<number> => fc.oneof(fc.constantFrom(0.001, 0.0015, 1, max), fc.double({ min: 0.001, max, noNaN: true }));
const VALID = {
  method: fc.constantFrom('GET', 'post', 'PuT', 'DELETE', 'patch'),
  headers: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), goodText, { maxKeys: 3 }),
  content: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(null)),
  timeout: seconds(86_400),
  'queue_detail.level': fc.constantFrom(1, 2),
  'queue_detail.limit_policy': fc.constantFrom('execute', 'last', 'discard'),
  'queue_detail.key': goodText.filter((t) => t.length > 0),
  'queue_detail.id': fc.stringMatching(/^[A-Za-z0-9_-]{1,6}$/),
  'queue_detail.ttl': seconds(2_592_000),
  'queue_detail.attempts': fc.integer({ min: 1, max: 1000 }),
  'queue_detail.backoff': seconds(3600),
  'queue_detail.job_timeout': seconds(86_400),
  'queue_detail.delay': fc.oneof(fc.constant(0), seconds(2_592_000)),
};
type Field = keyof typeof VALID | 'url';

/**
 * Params: every field valid (the optional ones present or not), then none, one, two or three of
 * them replaced by anything at all: odd types, lone surrogates, non-finite and extreme numbers.
 */
function params(reply: boolean): fc.Arbitrary<string> {
  const fields = Object.keys(VALID).concat('url') as Field[];
  const valid = fc.record(
    { ...VALID, url: reply ? syncUrl.filter((u) => typeof u === 'string') : fc.constantFrom('/record', '/ping', '/record?x=1') },
    {
      requiredKeys: ['url', 'method', 'queue_detail.level', 'queue_detail.limit_policy'],
    },
  );
  const hostile = fc.array(fc.tuple(fc.constantFrom(...fields), fc.oneof(odd, number)), { maxLength: 3 });
  return fc.tuple(valid, fc.oneof({ weight: 1, arbitrary: fc.constant([]) }, { weight: 2, arbitrary: hostile })).map(([base, changes]) => {
    const flat: Record<string, unknown> = { ...base };
    for (const [field, value] of changes) flat[field] = reply && field === 'url' && typeof value === 'string' && BUSY_ROUTE.test(value) ? '/ping' : value;
    const out: Record<string, unknown> = { reply };
    const detail: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(flat)) {
      if (field.startsWith('queue_detail.')) detail[field.slice(13)] = value;
      else out[field] = value;
    }
    if (!reply || detail.level !== undefined) out.queue_detail = detail;
    return JSON.stringify(out).replace(/"1e999"/g, '1e999');
  });
}

/** Every job payload the deployment holds (waiting, delayed), as stored. */
async function storedPayloads(): Promise<string[]> {
  const payloads: string[] = [];
  for (const key of await redis.admin.keys(`{${prefix}}:*`)) {
    const type = await redis.admin.type(key);
    const values =
      type === 'list'
        ? await redis.admin.lrange(key, 0, -1)
        : type === 'hash'
          ? await redis.admin.hvals(key)
          : type === 'zset'
            ? await redis.admin.zrange(key, 0, -1)
            : [];
    payloads.push(...values.filter((v) => v.startsWith('{"id":')));
  }
  return payloads;
}

/** JSON whose numbers are whole milliseconds within their ranges (the scripts read them with %d+) and whose text is well-formed. */
function readable(payload: string): boolean {
  let job: Record<string, unknown>;
  try {
    job = JSON.parse(payload) as Record<string, unknown>;
  } catch {
    return false;
  }
  const whole = (name: string, max: number): boolean =>
    job[name] === undefined || (Number.isSafeInteger(job[name]) && (job[name] as number) >= 1 && (job[name] as number) <= max);
  const wellFormed = [job.url, job.method, job.key ?? '', ...Object.keys(job.headers ?? {}), ...Object.values(job.headers ?? {})].every(
    (t) => typeof t === 'string' && (t as string & { isWellFormed(): boolean }).isWellFormed() && !t.includes('\ufffd'),
  );
  return wellFormed && whole('ttl', 2_592_000_000) && whole('timeout', 86_400_000) && whole('backoff', 3_600_000) && whole('attempts', 1000);
}

interface Tally {
  tried: number;
  statuses: Record<string, number>;
  unexpected: string[];
}

/**
 * Sends `count` generated params, `concurrency` at a time. `allowed(status, params)` says which
 * 5xx are expected; any other 5xx, a malformed Output or a transport error is kept as unexpected.
 */
async function fuzz(
  tally: Tally,
  reply: boolean,
  count: number,
  options: { deadlineSeconds: number; allowed: (status: number, text: string) => boolean; seed: number },
): Promise<void> {
  const inputs = fc.sample(params(reply), { numRuns: count, seed: options.seed });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < inputs.length) {
      const text = inputs[next++];
      tally.tried++;
      try {
        const a = await rawCall(text, { address, deadlineSeconds: options.deadlineSeconds });
        const out = JSON.parse(a.raw) as { status_code: unknown; data?: unknown };
        const wellFormed = typeof out.status_code === 'string' && /^[1-5]\d\d$/.test(out.status_code) && 'data' in out;
        tally.statuses[String(out.status_code)] = (tally.statuses[String(out.status_code)] ?? 0) + 1;
        if (!wellFormed || (a.status >= 500 && !options.allowed(a.status, text))) tally.unexpected.push(`${a.raw.slice(0, 200)} for ${text.slice(0, 200)}`);
      } catch (err) {
        tally.unexpected.push(`${(err as Error).message} for ${text.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

/** The router's methods: another HTTP verb answers 501 from the app's router, as it would over HTTP. */
const ROUTER_METHODS = new Set(['HEAD', 'OPTIONS', 'GET', 'PUT', 'PATCH', 'POST', 'DELETE']);

/**
 * The 5xx a sync call may get from the app itself: a 504 when its own timeout (seconds) is under a
 * second, a 501 from the router for an HTTP verb it does not implement.
 */
function appAnswer(status: number, text: string): boolean {
  const p = JSON.parse(text.replace(/\b1e999\b/g, 'null')) as { timeout?: unknown; method?: unknown };
  if (status === 504) return typeof p.timeout === 'number' && p.timeout < 1;
  return status === 501 && typeof p.method === 'string' && !ROUTER_METHODS.has(p.method.toUpperCase());
}

test('thousands of generated params, sync and async, Redis up, stopped and back: well-formed answers, no unexpected 5xx, the gateway alive', async () => {
  const tally: Tally = { tried: 0, statuses: {}, unexpected: [] };
  const noneAllowed = (): boolean => false;
  const syncAllowed = appAnswer;
  const startedAt = Date.now();

  await fuzz(tally, true, 1500, { deadlineSeconds: 10, allowed: syncAllowed, seed: 1 });
  await fuzz(tally, false, 1500, { deadlineSeconds: 10, allowed: noneAllowed, seed: 2 });

  // Redis stopped: async calls may answer 503 (after waiting up to their 1 s deadline); sync calls are unaffected.
  await redis.stop();
  await fuzz(tally, false, 200, { deadlineSeconds: 1, allowed: (status) => status === 503, seed: 3 });
  await fuzz(tally, true, 300, { deadlineSeconds: 10, allowed: syncAllowed, seed: 4 });
  await redis.start();
  const probe = JSON.stringify({ url: '/record', method: 'POST', reply: false, queue_detail: { level: 1, limit_policy: 'execute' } });
  expect(await waitFor(async () => (await rawCall(probe, { address })).status === 201, 10_000)).toBe(true);
  await fuzz(tally, false, 500, { deadlineSeconds: 10, allowed: noneAllowed, seed: 5 });

  const payloads = await storedPayloads();
  const unreadable = payloads.filter((p) => !readable(p));
  report(`${payloads.length} payloads stored, ${unreadable.length} a script or worker could not read exactly`);
  expect(unreadable.slice(0, 5)).toEqual([]);
  report(
    `${tally.tried} params in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; statuses ${JSON.stringify(tally.statuses)}; unexpected ${tally.unexpected.length}`,
  );
  expect(tally.unexpected.slice(0, 10)).toEqual([]);
  expect(gateway.child.exitCode).toBeNull();
  expect((await call('/ping', { address })).status).toBe(200);
}, 240_000);
