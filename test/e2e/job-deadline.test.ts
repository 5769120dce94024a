// Every run has a deadline: a job that never settles is failed with 504 at its deadline, its
// slot is free at once, its handler is told through ctx.state.rpc.signal, and it is retried
// then dead like any failure. Sync calls get a signal too: aborted at their deadline or when
// the caller cancels. Real worker processes, a real gateway over gRPC, a real Redis.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import Redis from 'ioredis';
import { call, closeClients, rawCall, send } from '../../client';
import { rpcServiceDefinition } from '../../shared/call/wire';
import { keysFor } from '../../shared/store/keys';
import { inProcessGateway, killAll, logLines, startSwitchyard, waitFor } from '../helpers/processes';
import { expectCleanState, failureOf } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');

interface Run {
  id: string;
  attempt: number;
  body: Record<string, unknown>;
  start?: number;
  end?: number;
  hang?: boolean;
  aborted?: boolean;
  reason?: string;
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
  prefix = uniquePrefix('deadline');
  recordKey = `${prefix}:runs`;
  gateway = await inProcessGateway(APP, server.url, prefix, ['--timeout', '300ms']);
  address = gateway.address;
});
afterAll(async () => {
  closeClients();
  await gateway.stop();
  await killAll();
  const problems = await failureOf(expectCleanState(server.url, prefix));
  redis.disconnect();
  await server.close();
  if (problems) throw problems;
});

async function runs(): Promise<Run[]> {
  return (await redis.lrange(recordKey, 0, -1)).map((r) => JSON.parse(r) as Run);
}

test('a hung handler (--job-timeout 1s, --concurrency 1): the next job runs right after the deadline; the hung one is retried, then dead with 504; its signal aborted', async () => {
  const worker = await startSwitchyard(
    'worker',
    ['--app', APP, '--redis', server.url, '--prefix', prefix, '--concurrency', '1', '--job-timeout', '1s', '--attempts', '2', '--backoff', '100ms'],
    { RECORD_URL: server.url, RECORD_KEY: recordKey },
  );
  const hung = await send('/hang', { address, level: 1, content: { hung: true } });
  expect(hung.status).toBe(201);
  const hungId = (hung.data as { id: string }).id;
  expect(await waitFor(async () => (await runs()).some((r) => r.hang), 5000)).toBe(true);
  const next = await send('/record', { address, level: 1, content: { after: 'the hung one' } });
  const nextId = (next.data as { id: string }).id;

  expect(await waitFor(async () => (await runs()).some((r) => r.id === nextId), 10_000)).toBe(true);
  const all = await runs();
  const firstHang = all.find((r) => r.id === hungId && r.hang)!;
  const nextRun = all.find((r) => r.id === nextId)!;
  // The only slot was held by the hung run until its deadline, and freed at once then.
  expect(nextRun.start! - firstHang.start!).toBeGreaterThanOrEqual(900);
  process.stdout.write(`[deadline] next job started ${nextRun.start! - firstHang.start!} ms after the hung one (deadline 1000 ms)\n`);

  // Attempt 2 hangs too; after it the job is dead with 504.
  expect(await waitFor(async () => (await redis.llen(keysFor(prefix).dead)) === 1, 10_000)).toBe(true);
  const [entry] = await redis.lrange(keysFor(prefix).dead, 0, -1);
  expect(JSON.parse(entry)).toMatchObject({ attempts: 2, status: '504', error: expect.stringContaining('deadline of 1000 ms'), job: { id: hungId } });
  const hangs = (await runs()).filter((r) => r.id === hungId && r.hang);
  expect(hangs.map((r) => r.attempt)).toEqual([1, 2]);
  expect(await waitFor(async () => (await runs()).filter((r) => r.id === hungId && r.aborted).length === 2, 5000)).toBe(true);
  expect((await runs()).find((r) => r.aborted)).toMatchObject({ aborted: true, reason: expect.stringContaining('deadline') });
  const stats = await redis.hgetall(keysFor(prefix).stats);
  expect(stats).toMatchObject({ 'L1:retried': '1', 'L1:dead': '1', 'L1:done': '1' });

  // One JSON line per event.
  const events = logLines(worker.output());
  const timedOut = events.filter((l) => l.event === 'job_timed_out');
  expect(timedOut).toHaveLength(2);
  expect(timedOut[0]).toMatchObject({ level: 'warn', id: hungId, queue: 'L1', url: '/hang', attempt: 1, timeoutMs: 1000 });
  expect(events.find((l) => l.event === 'job_failed')).toMatchObject({ id: hungId, level: 'warn', attempt: 1, status: 504, next: 'retry' });
  expect(events.find((l) => l.event === 'job_dead')).toMatchObject({
    id: hungId,
    level: 'error',
    attempt: 2,
    status: 504,
    error: expect.stringContaining('deadline'),
  });
  expect(events.find((l) => l.event === 'start')).toMatchObject({ command: 'worker', config: { 'job-timeout': 1000, concurrency: 1 } });
}, 40_000);

test("a call's own timeout is its job's deadline", async () => {
  const worker = await startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, '--attempts', '1'], {
    RECORD_URL: server.url,
    RECORD_KEY: recordKey,
  });
  const a = await rawCall(
    JSON.stringify({ url: '/hang', method: 'POST', reply: false, timeout: 0.5, content: { own: true }, queue_detail: { level: 2, limit_policy: 'execute' } }),
    { address },
  );
  expect(a.status).toBe(201);
  const id = (a.data as { id: string }).id;
  expect(await waitFor(async () => (await redis.lrange(keysFor(prefix).dead, 0, -1)).some((e) => JSON.parse(e).job.id === id), 10_000)).toBe(true);
  expect(logLines(worker.output()).find((l) => l.event === 'job_timed_out' && l.id === id)).toMatchObject({ timeoutMs: 500, level: 'warn' });
}, 30_000);

test('a sync call: the signal aborts at its deadline, and when the caller cancels', async () => {
  // --timeout 300ms on this gateway
  expect(await call('/wait-for-abort', { address })).toMatchObject({ status: 504 });
  // The caller gives up before any deadline: the gRPC call is cancelled, and the route hears of it.
  const Client = grpc.makeGenericClientConstructor(rpcServiceDefinition, 'RPCServer');
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as {
    handel(input: { params: string }, cb: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
    close(): void;
  };
  const cancelled = new Promise<grpc.ServiceError | null>((resolve) => {
    const pending = client.handel({ params: '{"url":"/wait-for-abort","method":"GET","timeout":5}' }, resolve);
    setTimeout(() => pending.cancel(), 100);
  });
  expect(await cancelled).toMatchObject({ code: grpc.status.CANCELLED });
  client.close();
  expect(await waitFor(async () => ((await call('/signals', { address })).data as unknown[]).length === 2, 3000)).toBe(true);
  const seen = (await call('/signals', { address })).data as Array<{ aborted: boolean; reason: string }>;
  expect(seen[0]).toEqual({ aborted: true, reason: expect.stringContaining('deadline of 300 ms') });
  expect(seen[1]).toEqual({ aborted: true, reason: expect.stringMatching(/cancelled/) });
});

test("a call's own job options: attempts and job_timeout override the worker's flags, delay holds it back", async () => {
  await startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, '--attempts', '5', '--backoff', '100ms'], {
    RECORD_URL: server.url,
    RECORD_KEY: recordKey,
  });
  const queue = (url: string, queueDetail: Record<string, unknown>, content: unknown = {}): Promise<{ id: string }> =>
    rawCall(JSON.stringify({ url, method: 'POST', reply: false, content, queue_detail: { level: 1, limit_policy: 'execute', ...queueDetail } }), {
      address,
    }).then((a) => {
      expect(a.status).toBe(201);
      return a.data as { id: string };
    });
  const dead = async (id: string): Promise<Record<string, unknown> | undefined> =>
    (await redis.lrange(keysFor(prefix).dead, 0, -1)).map((e) => JSON.parse(e) as { job: { id: string } }).find((e) => e.job.id === id);

  // attempts 1: dead after its first failure, where the worker's flag allows 5.
  const once = await queue('/fail', { attempts: 1 });
  expect(await waitFor(async () => (await dead(once.id)) !== undefined, 10_000)).toBe(true);
  expect(await dead(once.id)).toMatchObject({ attempts: 1, status: '500' });
  // job_timeout 0.3 s (and attempts 1): a hung run is cut at its own deadline.
  const hung = await queue('/hang', { job_timeout: 0.3, attempts: 1 });
  expect(await waitFor(async () => (await dead(hung.id)) !== undefined, 10_000)).toBe(true);
  expect(await dead(hung.id)).toMatchObject({ status: '504', error: expect.stringContaining('deadline of 300 ms') });
  // delay 0.8 s: not run before.
  const sentAt = Date.now();
  const later = await queue('/record', { delay: 0.8 }, { later: true });
  expect(await waitFor(async () => (await runs()).some((r) => r.id === later.id), 10_000)).toBe(true);
  const ran = (await runs()).find((r) => r.id === later.id)!;
  expect(ran.start! - sentAt).toBeGreaterThanOrEqual(750);
}, 40_000);
