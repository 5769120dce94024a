// Worker-side edges found by an adversarial review (issue 14), on real worker processes, a real
// gateway over gRPC and a real redis-server: a settle lost with its connection, a `last` run
// past its deadline and the next run of its key, a wedged run and another run's long deadline,
// a worker started while Redis is full. Each failed before the fix. And a worker killed with
// acknowledgements waiting (settles ride on claims since): nothing lost, nothing counted twice.
import path from 'node:path';
import Redis from 'ioredis';
import { closeClients, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { inProcessGateway, killAll, startSwitchyard, waitFor } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';
import { expectCleanRedis } from '../helpers/check-state';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');

interface Run {
  id: string;
  key: string | null;
  attempt: number;
  pid: number;
  start?: number;
  end?: number;
  cut?: boolean;
  failing?: boolean;
}

let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterEach(async () => {
  closeClients();
  await killAll();
  await expectCleanRedis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.close();
});

async function deployment(name: string, gatewayFlags: string[] = []) {
  const prefix = uniquePrefix(name);
  const recordKey = `${prefix}:runs`;
  const gateway = await inProcessGateway(APP, server.url, prefix, gatewayFlags);
  const worker = (flags: string[]) =>
    startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, ...flags], { RECORD_URL: server.url, RECORD_KEY: recordKey });
  const runs = async (): Promise<Run[]> => (await redis.lrange(recordKey, 0, -1)).map((r) => JSON.parse(r) as Run);
  return { prefix, keys: keysFor(prefix), gateway, address: gateway.address, worker, runs };
}

test('a failed last run whose settle meets a dropped connection is settled when Redis answers again: the newer message of its key runs', async () => {
  const d = await deployment('settle');
  try {
    await d.worker(['--concurrency', '4', '--attempts', '3', '--backoff', '100ms']);
    const first = await send('/cut-and-fail', { address: d.address, level: 1, policy: 'last', key: 'K', content: { v: 1 } });
    expect(await waitFor(async () => (await d.runs()).some((r) => r.cut), 10_000)).toBe(true);
    const newer = await send('/record', { address: d.address, level: 1, policy: 'last', key: 'K', content: { v: 2 } });
    expect(newer.status).toBe(201);
    // The newer message runs once the failed run's settle lands and releases K.
    expect(await waitFor(async () => (await d.runs()).some((r) => r.id === (newer.data as { id: string }).id), 15_000)).toBe(true);
    expect(await waitFor(async () => (await redis.hlen(d.keys.running)) === 0, 5000)).toBe(true);
    // The failed run left the worker's hash: nothing of it is recorded as running.
    const where = await redis.hget(d.keys.jobs, (first.data as { id: string }).id);
    expect(where === null || !where.startsWith('r')).toBe(true);
  } finally {
    await d.gateway.stop();
  }
});

test('a last run past its job deadline keeps its key until its handler returns: the next run of the key starts after it', async () => {
  const d = await deployment('overlap');
  try {
    await d.worker(['--concurrency', '4', '--attempts', '1']);
    const a = await send('/record', { address: d.address, level: 1, policy: 'last', key: 'K', content: { sleep: 2500 }, jobTimeout: 0.5 });
    expect(a.status).toBe(201);
    // A is running (its record is written when it returns: wait on the index instead).
    const aId = (a.data as { id: string }).id;
    expect(await waitFor(async () => (await redis.hget(d.keys.jobs, aId))?.startsWith('r') ?? false, 10_000)).toBe(true);
    const b = await send('/record', { address: d.address, level: 1, policy: 'last', key: 'K', content: { sleep: 0 } });
    const bId = (b.data as { id: string }).id;
    expect(await waitFor(async () => (await d.runs()).some((r) => r.id === bId), 15_000)).toBe(true);
    const all = await d.runs();
    const runA = all.find((r) => r.id === aId)!;
    const runB = all.find((r) => r.id === bId)!;
    expect(runA).toBeDefined();
    expect(runB.start!).toBeGreaterThanOrEqual(runA.end!);
  } finally {
    await d.gateway.stop();
  }
});

test("a run wedging its worker's loop past its own deadline does not keep the lease for another run's long deadline: its other jobs run elsewhere", async () => {
  const d = await deployment('wedge');
  try {
    // Three jobs wait before any worker runs: a long one (60 s deadline, waits on I/O), a wedge
    // (loops on the CPU 8 s, its deadline 1 s) and a 1 ms job.
    const long = await send('/hang', { address: d.address, level: 1, content: {}, jobTimeout: 60 });
    // One attempt: recovered from the first worker it is buried, not run again to wedge the second.
    const wedge = await send('/block?ms=10000', { address: d.address, level: 1, content: {}, jobTimeout: 1, attempts: 1 });
    const quick = await send('/record', { address: d.address, level: 1, content: {} });
    for (const answer of [long, wedge, quick]) expect(answer.status).toBe(201);
    const first = await d.worker(['--concurrency', '3', '--lease', '2s', '--attempts', '5']);
    const quickId = (quick.data as { id: string }).id;
    // All three are the first worker's before the second starts.
    expect(await waitFor(async () => (await redis.hget(d.keys.jobs, quickId))?.startsWith('r') ?? false, 10_000)).toBe(true);
    const second = await d.worker(['--concurrency', '3', '--lease', '2s']);
    const wedgeId = (wedge.data as { id: string }).id;
    // The wedge records itself when its loop lets go (10 s); the quick job ran on the second
    // worker before that: the first worker's lease ended with the wedge's own deadline.
    expect(await waitFor(async () => (await d.runs()).some((r) => r.id === wedgeId), 30_000)).toBe(true);
    expect(await waitFor(async () => (await d.runs()).some((r) => r.id === quickId), 10_000)).toBe(true);
    const all = await d.runs();
    const run = all.find((r) => r.id === quickId)!;
    const wedged = all.find((r) => r.id === wedgeId)!;
    expect(run.pid).toBe(second.child.pid);
    expect(wedged.pid).toBe(first.child.pid);
    expect(run.start!).toBeLessThan(wedged.end!);
  } finally {
    await d.gateway.stop();
  }
});

test('a worker starts while Redis is full (maxmemory, noeviction) and drains the backlog; enqueue answers 503', async () => {
  const own = await startRedis();
  const client = new Redis(own.url);
  const prefix = uniquePrefix('full');
  const gateway = await inProcessGateway(APP, own.url, prefix);
  try {
    for (let i = 0; i < 50; i++) expect((await send('/ping', { address: gateway.address, method: 'GET', level: 1 })).status).toBe(201);
    const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
    await client.config('SET', 'maxmemory-policy', 'noeviction');
    await client.config('SET', 'maxmemory', String(used + 64 * 1024));
    await client.set('filler', 'x'.repeat(128 * 1024)).catch(() => undefined);
    for (
      let i = 0;
      (await client.set(`fill${i}`, 'x'.repeat(8192)).then(
        () => true,
        () => false,
      )) && i < 1000;
      i++
    );
    const refused = await send('/ping', { address: gateway.address, method: 'GET', level: 1 });
    expect(refused.status).toBe(503);
    await startSwitchyard('worker', ['--app', APP, '--redis', own.url, '--prefix', prefix]);
    const k = keysFor(prefix);
    expect(await waitFor(async () => (await client.llen(k.queue(1, 'execute'))) === 0, 15_000)).toBe(true);
    expect(await waitFor(async () => Number(await client.hget(k.stats, 'L1:done')) >= 50, 15_000)).toBe(true);
  } finally {
    await gateway.stop();
    client.disconnect();
    await own.close();
  }
});

test('a worker killed while its finished runs wait to be acknowledged (alone or riding on its next claim) loses no job and counts none twice', async () => {
  const d = await deployment('killed-acks');
  try {
    const victim = await d.worker(['--concurrency', '10', '--lease', '1s']);
    for (let i = 0; i < 20; i++) expect((await send('/slow?ms=400', { address: d.address, level: 1, policy: 'execute', method: 'GET' })).status).toBe(201);
    const victimHash = d.keys.workerJobs(victim.ready.id);
    expect(await waitFor(async () => (await redis.hlen(victimHash)) === 10, 10_000)).toBe(true);
    // Every write is held while the ten runs end: their acknowledgements (and the claim they
    // ride on) wait in Redis's paused queue, and the worker is killed with them there.
    await redis.call('CLIENT', 'PAUSE', '1500', 'WRITE');
    await new Promise((resolve) => setTimeout(resolve, 900));
    victim.kill('SIGKILL');
    await victim.exited;
    await d.worker(['--concurrency', '10', '--lease', '1s']);
    expect(await waitFor(async () => Number(await redis.hget(d.keys.stats, 'L1:done')) === 20, 20_000)).toBe(true);
    expect(await redis.llen(d.keys.queue(1, 'execute'))).toBe(0);
    expect(await redis.exists(victimHash)).toBe(0);
    // Ten runs were recorded for the dead worker when it died (finished, or claimed by the held
    // claim): recovery handed them back, and each job is counted done once.
    expect(Number(await redis.hget(d.keys.stats, 'L1:recovered'))).toBeGreaterThanOrEqual(10);
    expect(Number(await redis.hget(d.keys.stats, 'L1:done'))).toBe(20);
    process.stderr.write(`[killed-acks] ${JSON.stringify(await redis.hgetall(d.keys.stats))}\n`);
  } finally {
    await d.gateway.stop();
  }
});
