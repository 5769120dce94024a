// The queue engine of this checkout against another build of it, side by side in one run, on one
// redis-server: enqueue (execute and last) and drain (claim in batches, acknowledge), rounds
// interleaved, medians. Redis time per job comes from INFO commandstats (every script call is an
// EVALSHA), reset before each phase; memory per waiting job from INFO memory's used_memory, before
// and after the execute phase's enqueue (Redis flushed before it).
//   npm run build && node dist/bench/store-compare.js --other /path/to/other/checkout [--jobs 20000] [--rounds 3]
// The other checkout must be built (its dist/). Prints a markdown table.
// compareStores() is the same measurement for other benchmarks (bench/compare.ts, the regression gate).
import { existsSync } from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { median, startRedisServer } from './lib';

export interface StoreLike {
  enqueue(call: unknown, limits: { capacity: number; discardThreshold: number }): Promise<unknown>;
  register(workerId: string, leaseMs: number): Promise<boolean>;
  claim(
    workerId: string,
    n: number,
    level2Room: number,
    selection: { weights: readonly [number, number]; strict: boolean; capacity: number },
    leaseMs: number,
  ): Promise<{ runs: Array<{ token: number; payload: string }> } | 'lost'>;
  finish(workerId: string, acks: Array<{ job: unknown; outcome: 'done'; status: number }>): Promise<unknown>;
  renewLease(workerId: string, leaseMs: number): Promise<boolean>;
  fail(workerId: string, token: number, plan: { retryDelayMs: number }, deadMax: number): Promise<unknown>;
  promoteDue(deadMax: number, max?: number): Promise<number>;
}

export interface Engine {
  name: string;
  Store: new (redis: Redis, prefix: string) => StoreLike;
  parseParams: (text: string, limits: { maxParamsBytes: number; maxBodyBytes: number }) => unknown;
  decodeJob: (token: number, payload: string) => unknown;
}

export function engineAt(root: string, name: string): Engine {
  const dist = path.join(root, 'dist', 'shared');
  /* eslint-disable @typescript-eslint/no-require-imports -- two builds of one module, loaded by path */
  return {
    name,
    Store: require(path.join(dist, 'store', 'store.js')).Store,
    parseParams: require(path.join(dist, 'call', 'params.js')).parseParams,
    // The job's format moved to store/format/ (older builds: store/job.js).
    decodeJob: require(
      existsSync(path.join(dist, 'store', 'format', 'job.js')) ? path.join(dist, 'store', 'format', 'job.js') : path.join(dist, 'store', 'job.js'),
    ).decodeJob,
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

const LIMITS = { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 };
const ADMISSION = { capacity: 1_000_000, discardThreshold: 1_000_000 };
const SELECTION = { weights: [3, 1] as const, strict: false, capacity: 1_000_000 };
const LEASE = 60_000;
const IN_FLIGHT = 256;

/** Redis µs spent in scripts (EVALSHA and EVAL) since the last CONFIG RESETSTAT. */
export async function scriptMicros(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  let usec = 0;
  for (const name of ['evalsha', 'eval']) usec += Number(new RegExp(`cmdstat_${name}:calls=\\d+,usec=(\\d+)`).exec(info)?.[1] ?? 0);
  return usec;
}

/** INFO memory's used_memory: the bytes Redis's allocator holds. */
export async function usedMemory(admin: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
}

export interface StoreRound {
  enqueuePerSecond: number;
  /** Redis bytes per waiting execute job (used_memory after the enqueue - before, / jobs). */
  bytesPerJob: number;
  enqueueMicros: number;
  lastPerSecond: number;
  lastMicros: number;
  drainPerSecond: number;
  drainMicros: number;
  /** Redis µs per call of one script, each phase calling only that script. */
  renewMicros: number;
  claimOneMicros: number;
  claimEmptyMicros: number;
  finishOneMicros: number;
  failMicros: number;
  promoteMicros: number;
}

async function round(engine: Engine, url: string, admin: Redis, jobs: number): Promise<StoreRound> {
  await admin.flushall();
  const redis = new Redis(url, { enableAutoPipelining: true });
  const store = new engine.Store(redis, `cmp-${engine.name}`);
  const body = (i: number, policy: string): string =>
    JSON.stringify({ url: `/users/${i}`, method: 'PUT', reply: false, content: { name: 'Ada', i }, queue_detail: { level: 1, limit_policy: policy } });
  const timed = async (work: () => Promise<void>): Promise<{ seconds: number; micros: number }> => {
    await admin.config('RESETSTAT');
    const started = performance.now();
    await work();
    const seconds = (performance.now() - started) / 1000;
    return { seconds, micros: await scriptMicros(admin) };
  };
  const enqueueAll = async (policy: string, keys: number): Promise<void> => {
    for (let from = 0; from < jobs; from += IN_FLIGHT) {
      const batch = [];
      for (let i = from; i < Math.min(jobs, from + IN_FLIGHT); i++) batch.push(store.enqueue(engine.parseParams(body(i % keys, policy), LIMITS), ADMISSION));
      await Promise.all(batch);
    }
  };
  const memoryBefore = await usedMemory(admin);
  const execute = await timed(() => enqueueAll('execute', jobs));
  const bytesPerJob = ((await usedMemory(admin)) - memoryBefore) / jobs;
  const drain = await timed(async () => {
    await store.register('w', LEASE);
    for (;;) {
      const claimed = await store.claim('w', 50, 50, SELECTION, LEASE);
      if (claimed === 'lost') throw new Error('lease lost');
      if (claimed.runs.length === 0) break;
      await store.finish(
        'w',
        claimed.runs.map((run) => ({ job: engine.decodeJob(run.token, run.payload), outcome: 'done' as const, status: 200 })),
      );
    }
  });
  await admin.flushall();
  const last = await timed(() => enqueueAll('last', 1000));
  // One script per phase, so INFO commandstats' EVALSHA time is that script's.
  await admin.flushall();
  const calls = Math.min(jobs, 5000);
  const inTurn = async (n: number, one: (i: number) => Promise<unknown>): Promise<void> => {
    for (let from = 0; from < n; from += IN_FLIGHT) {
      const batch = [];
      for (let i = from; i < Math.min(n, from + IN_FLIGHT); i++) batch.push(one(i));
      await Promise.all(batch);
    }
  };
  await store.register('w', LEASE);
  const renew = await timed(() => inTurn(calls, () => store.renewLease('w', LEASE)));
  const claimEmpty = await timed(() => inTurn(calls, () => store.claim('w', 10, 10, SELECTION, LEASE)));
  await enqueueAll('execute', jobs);
  const claimedOne: Array<{ token: number; payload: string }> = [];
  const claimOne = await timed(async () => {
    // One claim at a time: concurrent claims by one worker would take in batches of their own.
    for (let i = 0; i < calls; i++) {
      const claimed = await store.claim('w', 1, 1, SELECTION, LEASE);
      if (claimed === 'lost') throw new Error('lease lost');
      claimedOne.push(...claimed.runs);
    }
  });
  const half = claimedOne.length >> 1;
  const finishOne = await timed(() =>
    inTurn(half, (i) => store.finish('w', [{ job: engine.decodeJob(claimedOne[i].token, claimedOne[i].payload), outcome: 'done', status: 200 }])),
  );
  const fail = await timed(() => inTurn(claimedOne.length - half, (i) => store.fail('w', claimedOne[half + i].token, { retryDelayMs: 0 }, 1000)));
  const promote = await timed(async () => {
    while ((await store.promoteDue(1000, 200)) > 0);
  });
  const promoteCalls = Math.ceil((claimedOne.length - half) / 200) + 1;
  redis.disconnect();
  return {
    renewMicros: renew.micros / calls,
    claimEmptyMicros: claimEmpty.micros / calls,
    claimOneMicros: claimOne.micros / calls,
    finishOneMicros: finishOne.micros / half,
    failMicros: fail.micros / (claimedOne.length - half),
    promoteMicros: promote.micros / promoteCalls,
    enqueuePerSecond: jobs / execute.seconds,
    enqueueMicros: execute.micros / jobs,
    bytesPerJob,
    lastPerSecond: jobs / last.seconds,
    lastMicros: last.micros / jobs,
    drainPerSecond: jobs / drain.seconds,
    drainMicros: drain.micros / jobs,
  };
}

export const STORE_ROWS: ReadonlyArray<[string, keyof StoreRound, number]> = [
  ['enqueue execute, jobs/s', 'enqueuePerSecond', 0],
  ['enqueue execute, Redis µs per job', 'enqueueMicros', 2],
  ['Redis bytes per waiting job (execute)', 'bytesPerJob', 1],
  ['enqueue last (1,000 keys), jobs/s', 'lastPerSecond', 0],
  ['enqueue last, Redis µs per job', 'lastMicros', 2],
  ['drain (claim 50, finish), jobs/s', 'drainPerSecond', 0],
  ['drain, Redis µs per job', 'drainMicros', 2],
  ['renew a lease, Redis µs per call', 'renewMicros', 2],
  ['claim with nothing waiting (registers idle), Redis µs per call', 'claimEmptyMicros', 2],
  ['claim 1, Redis µs per call', 'claimOneMicros', 2],
  ['finish 1, Redis µs per call', 'finishOneMicros', 2],
  ['fail 1 (retry), Redis µs per call', 'failMicros', 2],
  ['promote due retries (200 per call), Redis µs per call', 'promoteMicros', 2],
];

/**
 * The queue engines of two built checkouts on one private redis-server, `rounds` rounds
 * interleaved (the first root goes first in even rounds, the second in odd ones). Returns each
 * root's rounds, keyed by the name given with it.
 */
export async function compareStores(
  checkouts: ReadonlyArray<{ name: string; root: string }>,
  options: { jobs: number; rounds: number; onRound?: (name: string, round: number, result: StoreRound) => void },
): Promise<Map<string, StoreRound[]>> {
  const engines = checkouts.map(({ name, root }) => engineAt(root, name));
  const server = await startRedisServer();
  const admin = new Redis(server.url);
  const results = new Map<string, StoreRound[]>(engines.map((e) => [e.name, []]));
  try {
    // Interleaved, and in turn first: neither build always runs on a warmer or a cooler machine.
    for (let r = 0; r < options.rounds; r++)
      for (const engine of r % 2 ? [...engines].reverse() : engines) {
        const result = await round(engine, server.url, admin, options.jobs);
        results.get(engine.name)!.push(result);
        options.onRound?.(engine.name, r, result);
      }
  } finally {
    admin.disconnect();
    server.stop();
  }
  return results;
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: string): string => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback);
  const other = arg('--other', '');
  if (!other) throw new Error('--other <path of another built checkout> is required');
  const jobs = Number(arg('--jobs', '20000'));
  const rounds = Number(arg('--rounds', '3'));
  const results = await compareStores(
    [
      { name: 'other', root: other },
      { name: 'this', root: path.join(__dirname, '..', '..') },
    ],
    { jobs, rounds },
  );
  const m = (name: string, field: keyof StoreRound): number => median(results.get(name)!.map((x) => x[field]));
  const lines = [`${jobs} jobs per phase, ${rounds} rounds interleaved, medians; this / other`, '', '| | other | this | ratio |', '|---|---|---|---|'];
  for (const [label, field, digits] of STORE_ROWS) {
    const a = m('other', field);
    const b = m('this', field);
    lines.push(`| ${label} | ${a.toFixed(digits)} | ${b.toFixed(digits)} | ${(b / a).toFixed(2)} |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  process.exit(0);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`store-compare failed: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
