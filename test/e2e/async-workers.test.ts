// The async semantics (docs/protocol.md, section 5) end to end: a real gateway over gRPC, real worker processes (spawned and
// killed), a real Redis. The recording app appends every run to a Redis list we read back.
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import Redis from 'ioredis';
import type { RunningPart } from '../../cli/running-part';
import { closeClients, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { BIN, inProcessGateway, killAll, startSwitchyard, waitFor, type SwitchyardProcess } from '../helpers/processes';
import { expectCleanState } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');

interface Run {
  id: string;
  level: number;
  key: string | null;
  attempt: number;
  body: Record<string, unknown>;
  pid: number;
  start: number;
  end: number;
}

let server: TestRedis;
let redis: Redis;
let gateway: RunningPart;
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
  prefix = uniquePrefix('async');
  recordKey = `${prefix}:runs`;
  gateway = await gatewayWith([]);
  address = `127.0.0.1:${gateway.port}`;
});

async function gatewayWith(flags: string[]): Promise<RunningPart> {
  return inProcessGateway(APP, server.url, prefix, flags);
}
afterEach(async () => {
  await gateway.stop();
  await killAll();
  await expectCleanState(server.url, prefix);
});

function worker(flags: string[] = []): Promise<SwitchyardProcess> {
  return startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, ...flags], {
    RECORD_URL: server.url,
    RECORD_KEY: recordKey,
  });
}

async function runs(): Promise<Run[]> {
  return (await redis.lrange(recordKey, 0, -1)).map((r) => JSON.parse(r) as Run);
}

async function enqueue(n: number, options: Parameters<typeof send>[1], body: (i: number) => Record<string, unknown> = (i) => ({ i })): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => send('/record', { address, ...options, content: body(i + j) })));
    for (const answer of batch) {
      expect(answer.status).toBe(201);
      ids.push((answer.data as { id: string }).id);
    }
  }
  return ids;
}

test('every execute message runs exactly once with two workers', async () => {
  await Promise.all([worker(['--concurrency', '20']), worker(['--concurrency', '20'])]);
  const ids = await enqueue(300, { level: 1, policy: 'execute' }, (i) => ({ i, sleep: 20 }));
  expect(await waitFor(async () => (await redis.llen(recordKey)) >= 300, 30_000)).toBe(true);
  await new Promise((r) => setTimeout(r, 300));
  const seen = (await runs()).map((r) => r.id);
  expect(seen.sort()).toEqual([...ids].sort());
  expect(new Set((await runs()).map((r) => r.pid)).size).toBe(2);
});

test('a queued message reads as JSON with redis-cli', async () => {
  await send('/record', { address, level: 2, policy: 'execute', content: { hello: 'world' } });
  const out = execFileSync('redis-cli', ['-u', server.url, 'LRANGE', keysFor(prefix).queue(2, 'execute'), '0', '-1'], { encoding: 'utf8' });
  expect(JSON.parse(out.trim())).toMatchObject({ url: '/record', method: 'POST', level: 2, content: { hello: 'world' } });
});

test('50 updates to one key with no worker leave one entry, which runs once with the newest body', async () => {
  const answers = [];
  for (let v = 1; v <= 50; v++) answers.push(await send('/record', { address, level: 1, policy: 'last', key: 'user:1', content: { v } }));
  expect(answers[0].data).toMatchObject({ state: 'queued' });
  expect(answers.slice(1).every((a) => (a.data as { state: string }).state === 'replaced')).toBe(true);
  expect(await redis.hlen(keysFor(prefix).queue(1, 'last'))).toBe(1);
  await worker();
  expect(await waitFor(async () => (await redis.llen(recordKey)) >= 1, 10_000)).toBe(true);
  await new Promise((r) => setTimeout(r, 500));
  const all = await runs();
  expect(all).toHaveLength(1);
  expect(all[0].body).toEqual({ v: 50 });
  expect(all[0].key).toBe('user:1');
});

test('an update arriving while its key runs waits, and runs after that run ends', async () => {
  await worker(['--concurrency', '10']);
  await send('/record', { address, level: 1, policy: 'last', key: 'k', content: { v: 1, sleep: 600 } });
  expect(await waitFor(async () => (await redis.hlen(keysFor(prefix).running)) === 1, 5000)).toBe(true);
  await send('/record', { address, level: 1, policy: 'last', key: 'k', content: { v: 2 } });
  await send('/record', { address, level: 1, policy: 'last', key: 'k', content: { v: 3 } });
  expect(await waitFor(async () => (await redis.llen(recordKey)) >= 2, 10_000)).toBe(true);
  await new Promise((r) => setTimeout(r, 300));
  const [first, second, ...rest] = await runs();
  expect(rest).toHaveLength(0);
  expect(first.body).toMatchObject({ v: 1 });
  expect(second.body).toEqual({ v: 3 });
  expect(second.start).toBeGreaterThanOrEqual(first.end);
});

test('the level-2 switch answers 409 refused above 80% (seen by a second gateway); discard sheds only under load', async () => {
  const [small, second] = await Promise.all([gatewayWith(['--capacity', '100']), gatewayWith(['--capacity', '100'])]);
  try {
    const at = `127.0.0.1:${small.port}`;
    const other = `127.0.0.1:${second.port}`;
    expect((await send('/record', { address: at, level: 2, policy: 'discard' })).status).toBe(201);
    for (let i = 1; i < 81; i++) expect((await send('/record', { address: at, level: 2 })).status).toBe(201);
    const refused = await send('/record', { address: other, level: 2 });
    expect(refused.status).toBe(409);
    expect(refused.data).toEqual({ state: 'refused', message: 'queue of status level2 is not active' });
    expect((await send('/record', { address: other, level: 1 })).status).toBe(201);
    // Level 1's backlog (1) is far under the discard threshold (60): accepted.
    expect((await send('/record', { address: other, level: 1, policy: 'discard' })).status).toBe(201);
    for (let i = 0; i < 58; i++) await send('/record', { address: at, level: 1 });
    const dropped = await send('/record', { address: at, level: 1, policy: 'discard' });
    expect(dropped.status).toBe(409);
    expect(dropped.data).toMatchObject({ state: 'dropped' });
  } finally {
    await Promise.all([small.stop(), second.stop()]);
  }
});

test('a worker killed with SIGKILL mid-job loses nothing: its jobs run again after the lease', async () => {
  const victim = await worker(['--concurrency', '5', '--lease', '1s']);
  const ids = await enqueue(20, { level: 1 }, (i) => ({ i, sleep: 300 }));
  expect(await waitFor(async () => (await redis.hlen(keysFor(prefix).workerJobs(victim.ready.id))) > 0, 5000)).toBe(true);
  victim.kill('SIGKILL');
  await victim.exited;
  const rescuer = await worker(['--concurrency', '5', '--lease', '1s']);
  expect(await waitFor(async () => new Set((await runs()).map((r) => r.id)).size >= 20, 30_000)).toBe(true);
  const all = await runs();
  expect(new Set(all.map((r) => r.id))).toEqual(new Set(ids));
  expect(all.some((r) => r.pid === rescuer.child.pid && r.attempt === 2)).toBe(true);
});

test('a job handed to an idle worker that then dies runs on another worker after the lease', async () => {
  const k = keysFor(prefix);
  const victim = await worker(['--lease', '1s']);
  const registered = async (): Promise<string | null> => redis.zscore(k.idle(1), victim.ready.id);
  expect(await waitFor(async () => (await registered()) !== null, 5000)).toBe(true);
  const stats = JSON.parse(execFileSync(process.execPath, [BIN, 'stats', '--json', '--redis', server.url, '--prefix', prefix], { encoding: 'utf8' }));
  expect(stats).toMatchObject({ workers: 1, idle: 1, inFlight: 0 });
  // Freeze it right after it renews its idle registration (once a second), so that the
  // registration is fresh when the job arrives.
  const first = await registered();
  expect(await waitFor(async () => (await registered()) !== first, 3000, 5)).toBe(true);
  victim.kill('SIGSTOP');
  const [id] = await enqueue(1, { level: 1 }, () => ({ handed: true }));
  expect((await redis.hvals(k.workerJobs(victim.ready.id))).map((p) => JSON.parse(p).id)).toEqual([id]);
  expect(await redis.llen(k.queue(1, 'execute'))).toBe(0);
  victim.kill('SIGKILL');
  await victim.exited;
  const rescuer = await worker(['--lease', '1s']);
  expect(await waitFor(async () => (await runs()).length === 1, 15_000)).toBe(true);
  expect((await runs())[0]).toMatchObject({ id, pid: rescuer.child.pid, attempt: 2 });
  expect(await redis.exists(k.inbox(victim.ready.id))).toBe(0);
});

test('an expired job (ttl) is dropped at claim time, not run', async () => {
  await send('/record', { address, level: 1, ttl: 0.05, content: { late: true } });
  await new Promise((r) => setTimeout(r, 150));
  await send('/record', { address, level: 1, content: { late: false } });
  await worker();
  expect(await waitFor(async () => (await redis.hget(keysFor(prefix).stats, 'L1:dropped')) === '1', 10_000)).toBe(true);
  expect(await waitFor(async () => (await redis.llen(recordKey)) === 1, 10_000)).toBe(true);
  expect((await runs())[0].body).toEqual({ late: false });
});

describe('weighted fair selection', () => {
  async function backlogBoth(n: number, sleep = 0): Promise<void> {
    // Interleaved so that arrival order alone would give 1:1.
    for (let i = 0; i < n; i += 25) {
      const answers = await Promise.all(
        Array.from({ length: 25 }, (_, j) => send('/record', { address, level: ((j % 2) + 1) as 1 | 2, content: { i: i + j, sleep } })),
      );
      expect(answers.every((a) => a.status === 201)).toBe(true);
    }
  }

  test('one worker at concurrency 1: the first 400 jobs are 3 level-1 to 1 level-2 (0.75 ± 0.06)', async () => {
    await backlogBoth(560);
    await worker(['--concurrency', '1']);
    expect(await waitFor(async () => (await redis.llen(recordKey)) >= 400, 60_000)).toBe(true);
    const first = (await runs()).slice(0, 400);
    const share = first.filter((r) => r.level === 1).length / 400;
    expect(share).toBeGreaterThanOrEqual(0.69);
    expect(share).toBeLessThanOrEqual(0.81);
  });

  test('four workers: the same share holds overall', async () => {
    // 10 ms jobs: 400 take one worker 4 s, so all four have started long before they are done.
    await backlogBoth(560, 10);
    await Promise.all([1, 2, 3, 4].map(() => worker(['--concurrency', '1'])));
    expect(await waitFor(async () => (await redis.llen(recordKey)) >= 400, 60_000)).toBe(true);
    const first = (await runs()).slice(0, 400);
    const share = first.filter((r) => r.level === 1).length / 400;
    expect(share).toBeGreaterThanOrEqual(0.69);
    expect(share).toBeLessThanOrEqual(0.81);
    expect(new Set(first.map((r) => r.pid)).size).toBe(4);
  });
});

test('with long level-2 jobs filling a worker, a level-1 job still starts at once (reserve)', async () => {
  const w = await worker(['--concurrency', '10']); // reserve 1
  const jobsKey = keysFor(prefix).workerJobs(w.ready.id);
  await enqueue(15, { level: 2 }, (i) => ({ i, sleep: 4000 }));
  expect(await waitFor(async () => (await redis.hlen(jobsKey)) === 9, 5000)).toBe(true);
  const sentAt = Date.now();
  await send('/record', { address, level: 1, content: { urgent: true } });
  expect(await waitFor(async () => (await redis.llen(recordKey)) >= 1, 3500)).toBe(true);
  const [firstRecorded] = await runs();
  expect(firstRecorded.body).toEqual({ urgent: true });
  expect(firstRecorded.start).toBeGreaterThanOrEqual(sentAt);
});

test('switchyard stats --json shows depths, level-2 state, in flight and counters', async () => {
  await enqueue(3, { level: 2 });
  await send('/record', { address, level: 1, policy: 'last', key: 'a' });
  const out = execFileSync(process.execPath, [BIN, 'stats', '--json', '--redis', server.url, '--prefix', prefix], { encoding: 'utf8' });
  const stats = JSON.parse(out);
  expect(stats).toMatchObject({
    queues: { 'L2:execute': 3, 'L1:last': 1 },
    backlog: { L1: 1, L2: 3 },
    level2Active: true,
    inFlight: 0,
    workers: 0,
    idle: 0,
    dead: 0,
  });
  expect(stats.counters['L2:queued']).toBe(3);
  const text = execFileSync(process.execPath, [BIN, 'stats', '--redis', server.url, '--prefix', prefix], { encoding: 'utf8' });
  expect(text).toContain('L2:execute');
  expect(text).toMatch(/level 2\s+active/);
});

test('switchyard stats --watch refreshes until SIGINT, then exits 0', async () => {
  const watcher = spawn(process.execPath, [BIN, 'stats', '--json', '--watch', '100ms', '--redis', server.url, '--prefix', prefix], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  watcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const depths = (): number[] =>
    out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { queues: Record<string, number> }).queues['L2:execute']);
  expect(await waitFor(async () => depths().length >= 1, 5000)).toBe(true);
  await enqueue(2, { level: 2 });
  expect(await waitFor(async () => depths().includes(2), 5000)).toBe(true);
  expect(depths()[0]).toBe(0);
  const exited = new Promise<number | null>((resolve) => watcher.once('exit', resolve));
  watcher.kill('SIGINT');
  expect(await exited).toBe(0);
});
