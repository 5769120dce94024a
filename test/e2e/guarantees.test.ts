// The delivery guarantees under attack, each a reproduction on real processes: a poison
// payload, a handler that blocks its event loop past the lease, a worker frozen (SIGSTOP)
// past its lease while it runs a key or right after a job was handed to it, a worker whose
// clock is 12 s off, and an older `last` message whose retry comes due after a newer one ran.
import path from 'node:path';
import Redis from 'ioredis';
import { closeClients, rawCall, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { inProcessGateway, killAll, logLines, sleep, startSwitchyard, type SwitchyardProcess, waitFor } from '../helpers/processes';
import { expectCleanState } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
const SKEW = path.join(__dirname, '..', 'fixtures', 'skew-clock.js');

interface Run {
  id: string;
  key: string | null;
  attempt: number;
  fence: number;
  body: Record<string, unknown>;
  pid: number;
  start: number;
  end?: number;
  aborted?: boolean;
  failing?: boolean;
}

let server: TestRedis;
let redis: Redis;
let gateway: Awaited<ReturnType<typeof inProcessGateway>>;
let address: string;
let prefix: string;
let recordKey: string;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  closeClients();
  await killAll();
  redis.disconnect();
  await server.close();
});
beforeEach(async () => {
  prefix = uniquePrefix('guarantee');
  recordKey = `${prefix}:runs`;
  gateway = await inProcessGateway(APP, server.url, prefix);
  address = gateway.address;
});
afterEach(async () => {
  await gateway.stop();
  await killAll();
  await expectCleanState(server.url, prefix);
});

function worker(flags: string[], env: NodeJS.ProcessEnv = {}): Promise<SwitchyardProcess> {
  return startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, ...flags], {
    RECORD_URL: server.url,
    RECORD_KEY: recordKey,
    ...env,
  });
}

async function runs(): Promise<Run[]> {
  return (await redis.lrange(recordKey, 0, -1)).map((r) => JSON.parse(r) as Run);
}

async function stats(): Promise<Record<string, string>> {
  return redis.hgetall(keysFor(prefix).stats);
}

async function sendOk(url: string, options: Parameters<typeof send>[1]): Promise<string> {
  const answer = await send(url, { address, ...options });
  expect(answer.status).toBe(201);
  return (answer.data as { id: string }).id;
}

function report(line: string): void {
  process.stdout.write(`[guarantees] ${line}\n`);
}

describe('poison payloads', () => {
  test('the gateway refuses content nested deeper than the store carries, naming content', async () => {
    const deep = '['.repeat(1000) + ']'.repeat(1000);
    const answer = await rawCall(`{"url":"/record","method":"POST","reply":false,"content":${deep},"queue_detail":{"level":1,"limit_policy":"execute"}}`, {
      address,
    });
    expect(answer).toMatchObject({ status: 400, data: 'content: nested deeper than 100 levels' });
  });

  test('a worker holding a 1,200-level payload is SIGKILLed: every job comes back once, recovery does not repeat, retries keep moving', async () => {
    const k = keysFor(prefix);
    // What an older gateway could have queued: a payload Redis's Lua cjson cannot decode.
    const deep = '['.repeat(1200) + ']'.repeat(1200);
    await redis.lpush(k.queue(1, 'execute'), `{"id":"poison","at":0,"level":1,"method":"POST","url":"/record?sleep=3000","content":${deep}}`);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await sendOk('/record', { level: 1, content: { i, sleep: 3000 } }));
    const victim = await worker(['--lease', '1s', '--concurrency', '8']);
    expect(await waitFor(async () => (await redis.hlen(k.workerJobs(victim.ready.id))) === 4, 5000)).toBe(true);
    victim.kill('SIGKILL');
    await victim.exited;
    // Past the dead worker's idle registration (it had free slots): the next job is not handed to it.
    await sleep(1600);
    // A retry that comes due meanwhile must still move.
    const retryId = await sendOk('/fail', { level: 1, content: { succeedAt: 2 } });
    const rescuer = await worker(['--lease', '1s', '--concurrency', '8', '--backoff', '200ms']);
    expect(await waitFor(async () => new Set((await runs()).filter((r) => r.end).map((r) => r.id)).size === 4, 15_000)).toBe(true);
    expect(await waitFor(async () => (await runs()).some((r) => r.id === retryId && r.attempt === 2), 10_000)).toBe(true);
    await sleep(1500); // several recovery rounds: none may hand the jobs back again
    const done = (await runs()).filter((r) => r.end);
    expect(done.map((r) => r.id).sort()).toEqual(['poison', ...ids].sort());
    expect(done.every((r) => r.pid === rescuer.child.pid && r.attempt === 2)).toBe(true);
    expect(await stats()).toMatchObject({ 'L1:recovered': '4', 'L1:retried': '1' });
    expect(await redis.zrange(k.workers, 0, -1)).toEqual([rescuer.ready.id]);
    expect(logLines(rescuer.output()).filter((l) => l.event === 'jobs_recovered')).toEqual([expect.objectContaining({ worker: victim.ready.id, jobs: 4 })]);
  }, 40_000);
});

test('a handler that blocks the event loop past the lease (3.5 s, lease 2 s) keeps its job: one run, done, nothing dead', async () => {
  const [a, b] = await Promise.all([worker(['--lease', '2s']), worker(['--lease', '2s'])]);
  const id = await sendOk('/block?ms=3500', { level: 1, policy: 'last', key: 'blocker' });
  expect(await waitFor(async () => (await stats())['L1:done'] === '1', 15_000)).toBe(true);
  await sleep(2500); // were it recovered, a second run would have started by now
  expect((await runs()).map((r) => [r.id, r.attempt])).toEqual([[id, 1]]);
  expect(await stats()).toMatchObject({ 'L1:done': '1' });
  expect((await stats())['L1:dead']).toBeUndefined();
  expect((await stats())['L1:recovered']).toBeUndefined();
  for (const w of [a, b]) expect(logLines(w.output()).filter((l) => l.event === 'lease_lost' || l.event === 'jobs_recovered')).toEqual([]);
}, 30_000);

test('a worker frozen past its lease while running key K: on waking it aborts that run and counts nothing; the run it takes again is a new one; a newer message for K waits for it', async () => {
  // B recovers A's run while A is frozen, but its only slot is busy, so the recovered run of K
  // comes back to A itself once A wakes: the case where a worker meets its own old run again.
  const b = await worker(['--lease', '2s', '--concurrency', '1']);
  const blocker = await sendOk('/record', { level: 1, content: { sleep: 9000 } });
  expect(await waitFor(async () => (await redis.hlen(keysFor(prefix).workerJobs(b.ready.id))) === 1, 5000)).toBe(true);
  const a = await worker(['--lease', '2s', '--concurrency', '4']);
  const v1 = await sendOk('/record', { level: 1, policy: 'last', key: 'K', content: { v: 1, sleep: 5000 } });
  expect(await waitFor(async () => (await redis.hlen(keysFor(prefix).workerJobs(a.ready.id))) === 1, 5000)).toBe(true);
  await sleep(300); // its handler has begun (it sleeps 5 s): the freeze catches it running
  a.kill('SIGSTOP');
  await sleep(3500);
  a.kill('SIGCONT');
  const contAt = Date.now();
  // Recovered, and taken again (the run records itself only when it ends: watch Redis instead).
  const k = keysFor(prefix);
  const retaken = async (): Promise<boolean> =>
    (await redis.hget(k.stats, 'L1:recovered')) === '1' && (await redis.hexists(k.running, 'L1:K')) === 1 && (await redis.llen(k.order(1))) === 0;
  expect(await waitFor(retaken, 5000)).toBe(true);
  // A newer message for K while attempt 2 runs: it waits for that run.
  await sleep(300);
  const v2 = await sendOk('/record', { level: 1, policy: 'last', key: 'K', content: { v: 2 } });
  const ended = async (): Promise<boolean> => {
    const all = await runs();
    return all.some((r) => r.id === v2) && all.some((r) => r.id === v1 && r.attempt === 2);
  };
  expect(await waitFor(ended, 15_000)).toBe(true);
  const all = await runs();
  const first = all.find((r) => r.id === v1 && r.attempt === 1)!;
  const second = all.find((r) => r.id === v1 && r.attempt === 2)!;
  const newer = all.find((r) => r.id === v2)!;
  expect(second.pid).toBe(a.child.pid);
  // The run that kept going in the frozen process was told to stop (its signal aborted) ...
  expect(first.aborted).toBe(true);
  // ... the live deployment started the newer message only after the live run of K ended ...
  expect(newer.start).toBeGreaterThanOrEqual(second.end!);
  // ... and fence tokens grow per key.
  expect([first.fence < second.fence, second.fence < newer.fence]).toEqual([true, true]);
  // Counted once each: attempt 2 of v1, v2 and the blocker; the abandoned attempt 1 counts nothing.
  expect(await waitFor(async () => (await stats())['L1:done'] === '3', 10_000)).toBe(true);
  expect(await stats()).toMatchObject({ 'L1:done': '3', 'L1:recovered': '1' });
  expect((await runs()).filter((r) => r.id === blocker)).toHaveLength(1);
  // It said so at once.
  const lost = logLines(a.output()).find((l) => l.event === 'lease_lost');
  expect(lost).toMatchObject({ level: 'error', worker: a.ready.id });
  report(
    `frozen 3.5 s (lease 2 s): lease_lost logged ${Date.parse(lost!.time as string) - contAt} ms after SIGCONT; ` +
      `the abandoned run went on ${Math.max(0, first.end! - second.start)} ms beside its recovery in the frozen process's memory (the documented window)`,
  );
}, 40_000);

test('a job handed to an idle worker that is frozen right after: recovered and run elsewhere; the frozen one never runs it', async () => {
  const k = keysFor(prefix);
  const victim = await worker(['--lease', '1s']);
  const registered = async (): Promise<string | null> => redis.zscore(k.idle(1), victim.ready.id);
  expect(await waitFor(async () => (await registered()) !== null, 5000)).toBe(true);
  const first = await registered();
  expect(await waitFor(async () => (await registered()) !== first, 3000, 5)).toBe(true);
  victim.kill('SIGSTOP');
  const id = await sendOk('/record', { level: 1, content: { handed: true } });
  expect((await redis.hvals(k.workerJobs(victim.ready.id))).map((p) => JSON.parse(p).id)).toEqual([id]);
  const rescuer = await worker(['--lease', '1s']);
  expect(await waitFor(async () => (await runs()).length === 1, 15_000)).toBe(true);
  victim.kill('SIGCONT');
  await sleep(1500);
  expect((await runs()).map((r) => [r.id, r.pid, r.attempt])).toEqual([[id, rescuer.child.pid, 2]]);
  expect(await stats()).toMatchObject({ 'L1:done': '1' });
  expect(logLines(victim.output()).find((l) => l.event === 'lease_lost')).toMatchObject({ worker: victim.ready.id });
}, 40_000);

test('a worker whose clock is 12 s behind (lease 10 s) is never declared dead, and one 12 s ahead declares nobody dead', async () => {
  const behind = await worker(['--lease', '10s', '--concurrency', '2'], { NODE_OPTIONS: `--require ${SKEW}`, CLOCK_SHIFT_MS: '-12000' });
  const ahead = await worker(['--lease', '10s', '--concurrency', '2'], { NODE_OPTIONS: `--require ${SKEW}`, CLOCK_SHIFT_MS: '12000' });
  const ids = [];
  for (let i = 0; i < 6; i++) ids.push(await sendOk('/record', { level: 1, policy: 'last', key: `skew-${i}`, content: { i, sleep: 3000 } }));
  expect(await waitFor(async () => (await stats())['L1:done'] === '6', 20_000)).toBe(true);
  await sleep(1000);
  const all = await runs();
  expect(all.map((r) => r.id).sort()).toEqual([...ids].sort());
  expect(new Set(all.map((r) => r.pid))).toEqual(new Set([behind.child.pid, ahead.child.pid]));
  expect((await stats())['L1:recovered']).toBeUndefined();
  for (const w of [behind, ahead]) expect(logLines(w.output()).filter((l) => l.event === 'lease_lost' || l.event === 'jobs_recovered')).toEqual([]);
}, 40_000);

test("an older last message's retry never runs after a newer message of its key succeeded", async () => {
  await worker(['--backoff', '2s']);
  const v1 = await sendOk('/fail', { level: 1, policy: 'last', key: 'profile', content: { v: 1, succeedAt: 2 } });
  expect(await waitFor(async () => (await stats())['L1:retried'] === '1', 5000)).toBe(true);
  await sleep(300);
  const v2 = await sendOk('/fail', { level: 1, policy: 'last', key: 'profile', content: { v: 2, succeedAt: 1 } });
  expect(await waitFor(async () => (await stats())['L1:done'] === '1', 5000)).toBe(true);
  await sleep(3500); // past v1's retry (2–4 s after its failure)
  expect((await runs()).map((r) => [r.id, r.attempt])).toEqual([
    [v1, 1],
    [v2, 1],
  ]);
  expect(await stats()).toMatchObject({ 'L1:done': '1', 'L1:superseded': '1', 'L1:retried': '1' });
}, 30_000);
