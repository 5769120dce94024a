// Async path, side by side in one run against BullMQ and bee-queue on the same Redis server,
// the same payload (url, method, headers, body) and no-op work:
//   (a) drain of N pre-queued jobs by one worker process at concurrency 50, (b) by two,
//   (c) enqueue calls/s through the gateway at 64 in flight, as a ratio to its own sync no-op,
//   (d) Redis memory per waiting job, (e) idle wake-up latency, client call → handler start.
import Redis from 'ioredis';
import { Queue } from 'bullmq';
import BeeQueue from 'bee-queue';
import { closeClients, send } from '../client';
import { parseParams } from '../shared/call/params';
import { Queues } from '../shared/store/queues';
import { machineClockMs } from './clock';
import { h2load, median, percentile, sleep, startGateway, startNode, startRedisServer, type Child, type LoadResult } from './lib';

export type System = 'switchyard' | 'bullmq' | 'bee-queue';
type WakePath = System | 'switchyard-store';
const SYSTEMS: System[] = ['switchyard', 'bullmq', 'bee-queue'];

const PAYLOAD = { url: '/noop', method: 'POST', headers: { 'content-type': 'application/json' }, body: { a: 1 } };
const ASYNC_PARAMS = JSON.stringify({
  url: PAYLOAD.url,
  method: PAYLOAD.method,
  headers: PAYLOAD.headers,
  content: PAYLOAD.body,
  reply: false,
  queue_detail: { level: 1, limit_policy: 'execute' },
});
const SYNC_PARAMS = '{"url":"/noop","method":"GET"}';

export interface AsyncResults {
  jobs: number;
  drain: Record<System, { one: number[]; two: number[] }>;
  bytesPerJob: Record<System, number[]>;
  wake: Record<WakePath, { p50: number; p99: number; samples: number }>;
  enqueue: LoadResult[];
  sync: LoadResult[];
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
}

/** Fills the queue of `system` with n jobs; returns the Redis bytes they hold. */
async function prequeue(system: System, name: string, redis: Redis, n: number): Promise<number> {
  const before = await usedMemory(redis);
  if (system === 'switchyard') {
    const queues = new Queues(redis, name);
    const request = parseParams(ASYNC_PARAMS, { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 });
    const limits = { capacity: 1e9, discardThreshold: 1e9 };
    for (let i = 0; i < n; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, n - i) }, () => queues.enqueue(request, limits)));
  } else if (system === 'bullmq') {
    const queue = new Queue(name, { connection: redis.options as never });
    for (let i = 0; i < n; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, () => ({ name: 'call', data: PAYLOAD })));
    }
    await queue.close();
  } else {
    const queue = new BeeQueue(name, { redis: { host: redis.options.host, port: redis.options.port }, isWorker: false, storeJobs: false });
    for (let i = 0; i < n; i += 1000) await queue.saveAll(Array.from({ length: Math.min(1000, n - i) }, () => queue.createJob(PAYLOAD)));
    await queue.close();
  }
  return ((await usedMemory(redis)) - before) / n;
}

function waitingKey(system: System, name: string): string {
  return system === 'switchyard' ? `{${name}}:L1:execute` : system === 'bullmq' ? `bull:${name}:wait` : `bq:${name}:waiting`;
}

async function startWorker(system: System, name: string, url: string, app = 'dist/examples/demo-app.js'): Promise<Child> {
  if (system === 'switchyard') {
    return startNode(
      ['bin/switchyard.js', 'worker', '--app', app, '--redis', url, '--prefix', name, '--admin-port', '0', '--concurrency', '50'],
      'worker ready',
      { BENCH_RECORD_URL: url },
    );
  }
  return startNode(['dist/bench/other-worker.js', system === 'bullmq' ? 'bullmq' : 'bee', name, url], 'worker ready');
}

/** Jobs/s between 10% and 90% drained (start-up of the worker processes left out). */
export async function drain(system: System, workers: number, n: number, url: string, redis: Redis, round: number): Promise<{ rate: number; bytes: number }> {
  const name = `drain-${system}-${workers}-${round}`;
  const bytes = await prequeue(system, name, redis, n);
  const key = waitingKey(system, name);
  if ((await redis.llen(key)) !== n) throw new Error(`${system}: expected ${n} waiting in ${key}, found ${await redis.llen(key)}`);
  const started = await Promise.all(Array.from({ length: workers }, () => startWorker(system, name, url)));
  let t10 = 0;
  let t90 = 0;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const left = await redis.llen(key);
    const now = performance.now();
    if (!t10 && left <= n * 0.9) t10 = now;
    if (left <= n * 0.1) {
      t90 = now;
      break;
    }
    await sleep(5);
  }
  await Promise.all(started.map((w) => w.stop()));
  await redis.flushall();
  if (!t90) throw new Error(`${system} did not drain ${n} jobs in 120 s`);
  return { rate: (n * 0.8) / ((t90 - t10) / 1000), bytes };
}

/**
 * Sequential calls with the worker idle in between: client call start → handler start.
 * `switchyard` goes through the gRPC gateway (the product's path); `switchyard-store` writes
 * to Redis from the client process, as the BullMQ and bee-queue clients do.
 */
async function wakeLatency(path: WakePath, url: string, redis: Redis, samples: number): Promise<number[]> {
  const system: System = path === 'switchyard-store' ? 'switchyard' : path;
  const name = `wake-${path}`;
  await redis.del('bench:wake');
  const worker = await startWorker(system, name, url, 'dist/bench/bench-app.js');
  const now = machineClockMs;
  let gateway: Child | undefined;
  let enqueue: (sentAt: number) => Promise<unknown>;
  let close = async (): Promise<void> => undefined;
  if (path === 'switchyard-store') {
    const queues = new Queues(redis, name);
    const limits = { capacity: 1e9, discardThreshold: 1e9 };
    enqueue = (sentAt) =>
      queues.enqueue(
        parseParams(JSON.stringify({ url: '/wake', method: 'POST', reply: false, content: { sentAt }, queue_detail: { level: 1, limit_policy: 'execute' } }), {
          maxParamsBytes: 1 << 20,
          maxBodyBytes: 1 << 20,
        }),
        limits,
      );
  } else if (system === 'switchyard') {
    gateway = await startGateway({ app: 'dist/bench/bench-app.js', redis: url, prefix: name });
    const address = `127.0.0.1:${gateway.fields.port}`;
    enqueue = (sentAt) => send('/wake', { address, level: 1, content: { sentAt } });
  } else if (system === 'bullmq') {
    const queue = new Queue(name, { connection: redis.options as never });
    enqueue = (sentAt) => queue.add('wake', { sentAt }, { removeOnComplete: true });
    close = () => queue.close();
  } else {
    const queue = new BeeQueue(name, { redis: { host: redis.options.host, port: redis.options.port }, isWorker: false, storeJobs: false });
    enqueue = (sentAt) => queue.createJob({ sentAt }).save();
    close = () => queue.close();
  }
  for (let i = 0; i < 20; i++) await enqueue(now()); // warm-up
  await sleep(200);
  await redis.del('bench:wake');
  for (let i = 0; i < samples; i++) {
    await enqueue(now());
    await sleep(15);
  }
  await sleep(300);
  const values = (await redis.lrange('bench:wake', 0, -1)).map(Number);
  await close();
  await worker.stop();
  await gateway?.stop();
  closeClients();
  return values;
}

/**
 * Wake-up latency of every path, interleaved: each round takes `samples` from each path in turn,
 * so a noisy minute hits them all alike; percentiles are of all rounds' samples pooled.
 */
export async function benchWake(url: string, redis: Redis, options: { rounds: number; samples: number }): Promise<AsyncResults['wake']> {
  const paths = [...SYSTEMS, 'switchyard-store'] as WakePath[];
  const pooled = new Map<WakePath, number[]>(paths.map((p) => [p, []]));
  for (let round = 0; round < options.rounds; round++) {
    for (const path of paths) {
      const values = await wakeLatency(path, url, redis, options.samples);
      pooled.get(path)!.push(...values);
      process.stderr.write(
        `wake-up round ${round + 1} ${path}: p50 ${percentile(values, 50).toFixed(2)} ms, p99 ${percentile(values, 99).toFixed(2)} ms (${values.length} samples)\n`,
      );
    }
  }
  const wake = {} as AsyncResults['wake'];
  for (const [path, values] of pooled) wake[path] = { p50: percentile(values, 50), p99: percentile(values, 99), samples: values.length };
  return wake;
}

export async function benchAsync(options: { rounds: number; jobs: number }): Promise<AsyncResults> {
  const server = await startRedisServer();
  const redis = new Redis(server.url);
  const results: AsyncResults = {
    jobs: options.jobs,
    drain: { switchyard: { one: [], two: [] }, bullmq: { one: [], two: [] }, 'bee-queue': { one: [], two: [] } },
    bytesPerJob: { switchyard: [], bullmq: [], 'bee-queue': [] },
    wake: {} as AsyncResults['wake'],
    enqueue: [],
    sync: [],
  };
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (const system of SYSTEMS) {
        const one = await drain(system, 1, options.jobs, server.url, redis, round);
        const two = await drain(system, 2, options.jobs, server.url, redis, round);
        results.drain[system].one.push(one.rate);
        results.drain[system].two.push(two.rate);
        results.bytesPerJob[system].push(one.bytes, two.bytes);
        process.stderr.write(
          `async round ${round + 1}: ${system} drain 1 worker ${Math.round(one.rate)}/s, 2 workers ${Math.round(two.rate)}/s, ${one.bytes.toFixed(0)} B/job\n`,
        );
      }
    }
    results.wake = await benchWake(server.url, redis, { rounds: options.rounds, samples: 300 });
    const gateway = await startGateway({ app: 'dist/examples/demo-app.js', redis: server.url, prefix: 'enqueue' });
    const port = Number(gateway.fields.port);
    const load = { clients: 4, streams: 16, requests: 100_000 };
    h2load(port, ASYNC_PARAMS, { ...load, requests: 20_000 });
    h2load(port, SYNC_PARAMS, { ...load, requests: 20_000 });
    for (let round = 0; round < options.rounds; round++) {
      results.enqueue.push(h2load(port, ASYNC_PARAMS, load));
      results.sync.push(h2load(port, SYNC_PARAMS, load));
      process.stderr.write(`enqueue round ${round + 1}: async ${Math.round(results.enqueue[round].rps)}/s, sync ${Math.round(results.sync[round].rps)}/s\n`);
    }
    const queued = await redis.llen('{enqueue}:L1:execute');
    if (queued < options.rounds * load.requests) throw new Error(`only ${queued} of the enqueued jobs are in Redis`);
    await gateway.stop();
  } finally {
    redis.disconnect();
    server.stop();
  }
  return results;
}

export function wakeTable(wake: AsyncResults['wake']): string {
  return [
    '| path | samples | p50 ms | p99 ms |',
    '|---|---|---|---|',
    ...Object.entries(wake).map(([path, w]) => `| ${path} | ${w.samples} | ${w.p50.toFixed(2)} | ${w.p99.toFixed(2)} |`),
  ].join('\n');
}

export function asyncTable(r: AsyncResults): string {
  const m = (xs: number[]): number => Math.round(median(xs));
  const drainRows = SYSTEMS.map(
    (s) => `| ${s} | ${m(r.drain[s].one)} | ${m(r.drain[s].two)} | ${m(r.bytesPerJob[s])} | ${r.wake[s].p50.toFixed(2)} | ${r.wake[s].p99.toFixed(2)} |`,
  );
  const store = r.wake['switchyard-store'];
  const sy = r.drain.switchyard;
  const ratio = (a: number[], b: number[]): string => (median(a) / median(b)).toFixed(2);
  const enq = median(r.enqueue.map((x) => x.rps));
  const sync = median(r.sync.map((x) => x.rps));
  return [
    `${r.jobs} pre-queued jobs, payload ${JSON.stringify(PAYLOAD)}, no-op work; medians of the rounds.`,
    '',
    '| system | (a) drain, 1 worker × 50, jobs/s | (b) drain, 2 workers × 50, jobs/s | (d) Redis bytes / waiting job | (e) wake-up p50 ms | (e) wake-up p99 ms |',
    '|---|---|---|---|---|---|',
    ...drainRows,
    `| switchyard, enqueued from the client process (no gRPC hop, as the others) | | | | ${store.p50.toFixed(2)} | ${store.p99.toFixed(2)} |`,
    '',
    `Switchyard / BullMQ drain: ${ratio(sy.one, r.drain.bullmq.one)}× (1 worker), ${ratio(sy.two, r.drain.bullmq.two)}× (2 workers) — target ≥ 1.5×`,
    `Switchyard / bee-queue drain: ${ratio(sy.one, r.drain['bee-queue'].one)}× (1 worker), ${ratio(sy.two, r.drain['bee-queue'].two)}× (2 workers) — target ≥ 1.0×`,
    `Switchyard / BullMQ memory per waiting job: ${(median(r.bytesPerJob.switchyard) / median(r.bytesPerJob.bullmq)).toFixed(2)} — target ≤ 0.5`,
    `Wake-up p99: Switchyard through the gateway ${r.wake.switchyard.p99.toFixed(2)} ms, enqueued directly ${store.p99.toFixed(2)} ms, vs bee-queue ${r.wake['bee-queue'].p99.toFixed(2)} ms — target: no worse`,
    `(c) enqueue through the gateway at 64 in flight: ${Math.round(enq)} calls/s vs sync no-op ${Math.round(sync)} calls/s = **${(enq / sync).toFixed(2)}** (target ≥ 0.8); rounds ${r.enqueue.map((x) => Math.round(x.rps)).join(', ')} / ${r.sync.map((x) => Math.round(x.rps)).join(', ')}`,
  ].join('\n');
}
