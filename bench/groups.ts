// Tenant groups (docs/design.md, "Tenants: groups inside a level"): what serving groups in turn
// costs, and that a deployment that names no group pays nothing for them.
//   npm run bench -- --only groups [--quick] [--rounds 3] [--jobs 20000]
//                    [--base 395746d] [--base-root <a built checkout of the base>]
// 1. No groups, side by side: the regression gate (bench/compare.ts) of the base (default
//    395746d, the commit before groups; --base-root uses a checkout already built instead of a
//    temporary one) against this tree: sync and enqueue through each tree's gateway, a drain by
//    one worker process of each tree, the queue engines' rows (bench/store-compare.ts) with
//    Redis bytes per waiting job.
// 2. Drain: the same number of jobs spread over 0 (no group), 1, 100 and 10,000 groups (job i in
//    group i mod N), drained by 1 and 2 real worker processes (bin/switchyard.js worker,
//    --concurrency 50, the demo app's no-op route, no group cap or rate). Between 10 % and 90 %
//    drained: jobs/s, Redis time in scripts and script calls per job, every Redis command the
//    scripts ran per job (INFO commandstats), Redis CPU and worker CPU per job. BullMQ's plain
//    queue is drained the same way in the same rounds (bench/async.ts, same payload).
// 3. The claim alone: one claimer in this process takes 50 at a time from the same queues, no
//    acknowledgement riding along, then settles them 50 at a time (finishJobs): Redis µs per
//    claim call and per finish call.
// 4. Memory: used_memory of N = 10,000 jobs in N groups (one each) minus that of N jobs in none, / N =
//    bytes per active group; the same once each of them has one run (claimed, not finished).
// Rounds interleaved (the order reversed in odd rounds), medians.
import Redis from 'ioredis';
import path from 'node:path';
import { parseParams, type CallRequest } from '../shared/call/params';
import { decodeJob } from '../shared/store/format/job';
import { Queues } from '../shared/store/queues';
import { Store } from '../shared/store/store';
import { drain as drainPeer } from './async';
import { cpuSeconds, prepareRef, redisCpuSeconds, runCompare, compareTable, type CompareResults } from './compare';
import { loadAverage, median, ROOT, sleep, startNode, startRedisServer, type Child } from './lib';
import { engineAt, scriptMicros, usedMemory } from './store-compare';

export const BASE_REF = '395746d';
export const GROUP_COUNTS = [0, 1, 100, 10_000] as const;
const WORKER_COUNTS = [1, 2] as const;
const APP = path.join(ROOT, 'dist', 'examples', 'demo-app.js');
const LIMITS = { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 };
const ADMISSION = { capacity: 1e9, discardThreshold: 1e9 };
const SELECTION = { weights: [3, 1] as const, strict: false, capacity: 1e9 };
const LEASE = 60_000;
const CLAIM = 50;

/** The payload of bench/async.ts (the one BullMQ and bee-queue carry), with a group when given. */
function callFor(group?: string): CallRequest {
  const queue_detail = { level: 1, limit_policy: 'execute', ...(group !== undefined && { group }) };
  const params = { url: '/noop', method: 'POST', headers: { 'content-type': 'application/json' }, content: { a: 1 }, reply: false, queue_detail };
  return parseParams(JSON.stringify(params), LIMITS);
}

/** n jobs through the product's enqueue (Queues), job i in group `t<i mod groups>` (none when groups is 0). */
async function enqueueJobs(url: string, prefix: string, groups: number, n: number): Promise<void> {
  const client = new Redis(url, { enableAutoPipelining: true });
  const queues = new Queues(client, prefix);
  const calls = groups === 0 ? [callFor()] : Array.from({ length: Math.min(groups, n) }, (_, g) => callFor(`t${g}`));
  try {
    for (let from = 0; from < n; from += 1000) {
      const batch = [];
      for (let i = from; i < Math.min(n, from + 1000); i++) batch.push(queues.enqueue(calls[i % calls.length], ADMISSION));
      await Promise.all(batch);
    }
  } finally {
    client.disconnect();
  }
}

/** Every command's calls and µs since the last CONFIG RESETSTAT (INFO commandstats). */
async function commandStats(admin: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const m of (await admin.info('commandstats')).matchAll(/cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/g))
    stats.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  return stats;
}

/** What the benchmark itself sends to Redis while it watches a drain: not the scripts' work. */
const OWN_COMMANDS = new Set(['info', 'config|resetstat', 'config', 'evalsha', 'eval', 'script|load', 'script', 'client|setname', 'select', 'ping']);

export interface GroupDrainRound {
  jobsPerSecond: number;
  /** Redis µs in EVALSHA per job drained (claims, settles, lease renewals: everything the workers ran). */
  scriptMicrosPerJob: number;
  scriptCallsPerJob: number;
  redisCpuMicrosPerJob: number;
  workerCpuMicrosPerJob: number;
  /** The enqueue script's Redis µs per job, while the jobs were put in line. */
  enqueueMicrosPerJob: number;
  /** Redis commands the scripts ran, per job drained (the benchmark's own polls taken out). */
  commandsPerJob: Record<string, number>;
}

function waitingReader(admin: Redis, prefix: string): () => Promise<number> {
  return async () => {
    const [list, grouped] = await Promise.all([admin.llen(`{${prefix}}:L1:execute`), admin.hget(`{${prefix}}:stats`, 'L1:grouped')]);
    return list + Number(grouped ?? 0);
  };
}

/** One drain: n jobs over `groups` groups put in line, then `workers` worker processes start. */
async function drainGroups(url: string, admin: Redis, groups: number, workers: number, n: number, round: number): Promise<GroupDrainRound> {
  await admin.flushall();
  const prefix = `grp-${groups}-${workers}-${round}`;
  await admin.config('RESETSTAT');
  await enqueueJobs(url, prefix, groups, n);
  const enqueueMicrosPerJob = (await scriptMicros(admin)) / n;
  const waiting = waitingReader(admin, prefix);
  if ((await waiting()) !== n) throw new Error(`${groups} groups: expected ${n} jobs waiting, found ${await waiting()}`);
  let started: Child[] = [];
  try {
    started = await Promise.all(
      Array.from({ length: workers }, () =>
        startNode(
          ['bin/switchyard.js', 'worker', '--app', APP, '--redis', url, '--prefix', prefix, '--admin-port', '0', '--concurrency', String(CLAIM)],
          'worker ready',
        ),
      ),
    );
    const sample = async (): Promise<{ left: number; at: number; stats: Awaited<ReturnType<typeof commandStats>>; redis: number; worker: number }> => {
      const [left, stats, redis] = await Promise.all([waiting(), commandStats(admin), redisCpuSeconds(admin)]);
      return { left, at: performance.now(), stats, redis, worker: started.reduce((sum, w) => sum + cpuSeconds(w.child.pid!), 0) };
    };
    let from: Awaited<ReturnType<typeof sample>> | undefined;
    let polls = 0; // LLEN + HGET pairs sent by this loop inside the window
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const left = await waiting();
      polls++;
      if (!from && left <= n * 0.9) {
        from = await sample();
        polls = 0;
      }
      if (from && left <= n * 0.1) {
        const to = await sample();
        const jobs = from.left - to.left;
        const delta = (name: string): { calls: number; usec: number } => {
          const a = from!.stats.get(name) ?? { calls: 0, usec: 0 };
          const b = to.stats.get(name) ?? { calls: 0, usec: 0 };
          return { calls: b.calls - a.calls, usec: b.usec - a.usec };
        };
        const commandsPerJob: Record<string, number> = {};
        for (const name of to.stats.keys()) {
          if (OWN_COMMANDS.has(name)) continue;
          // The sample's own read (one LLEN and one HGET) is in the window too.
          const own = name === 'llen' || name === 'hget' ? polls + 1 : 0;
          const calls = delta(name).calls - own;
          if (calls > 0) commandsPerJob[name] = calls / jobs;
        }
        const scripts = delta('evalsha');
        return {
          jobsPerSecond: jobs / ((to.at - from.at) / 1000),
          scriptMicrosPerJob: (scripts.usec + delta('eval').usec) / jobs,
          scriptCallsPerJob: (scripts.calls + delta('eval').calls) / jobs,
          redisCpuMicrosPerJob: ((to.redis - from.redis) * 1e6) / jobs,
          workerCpuMicrosPerJob: ((to.worker - from.worker) * 1e6) / jobs,
          enqueueMicrosPerJob,
          commandsPerJob,
        };
      }
      await sleep(5);
    }
    throw new Error(`${workers} worker(s) did not drain ${n} jobs in ${groups} groups in 120 s`);
  } finally {
    await Promise.all(started.map((w) => w.stop()));
  }
}

/** Redis calls and µs of one claim call with no group anywhere, for the base and this tree. */
export interface ClaimCallCost {
  /** Claims of one job from a queue of many; claims with nothing waiting. */
  oneMicros: number;
  emptyMicros: number;
  /** Redis commands the script ran per call (INFO commandstats), by name. */
  one: Record<string, number>;
  empty: Record<string, number>;
}

/**
 * Each build's claim with no group in use, 5,000 calls one after another: claim 1 from a queue,
 * then with nothing waiting. What a claim call costs before any job is taken shows here, which
 * a claim of 50 spreads over its jobs.
 */
async function claimCallCost(root: string, name: string, url: string, admin: Redis): Promise<ClaimCallCost> {
  const engine = engineAt(root, name);
  const calls = 5000;
  await admin.flushall();
  const redis = new Redis(url, { enableAutoPipelining: true });
  try {
    const store = new engine.Store(redis, `calls-${name}`);
    const call = engine.parseParams(
      JSON.stringify({ url: '/noop', method: 'POST', content: { a: 1 }, reply: false, queue_detail: { level: 1, limit_policy: 'execute' } }),
      LIMITS,
    );
    await Promise.all(Array.from({ length: calls }, () => store.enqueue(call, ADMISSION)));
    await store.register('w', LEASE);
    const measure = async (): Promise<{ micros: number; commands: Record<string, number> }> => {
      await admin.config('RESETSTAT');
      for (let i = 0; i < calls; i++) if ((await store.claim('w', 1, 1, SELECTION, LEASE)) === 'lost') throw new Error('lease lost');
      const commands: Record<string, number> = {};
      for (const [command, { calls: n }] of await commandStats(admin)) if (!OWN_COMMANDS.has(command)) commands[command] = n / calls;
      return { micros: (await scriptMicros(admin)) / calls, commands };
    };
    const one = await measure();
    const empty = await measure();
    return { oneMicros: one.micros, emptyMicros: empty.micros, one: one.commands, empty: empty.commands };
  } finally {
    redis.disconnect();
  }
}

export interface ClaimRound {
  /** Redis µs per claimJobs call taking up to 50 (no acknowledgements riding along). */
  claimMicros: number;
  claimMicrosPerJob: number;
  /** Redis µs per finishJobs call settling 50. */
  finishMicros: number;
  finishMicrosPerJob: number;
}

/** The claim alone, in this process: one claimer, 50 at a time, then the settles 50 at a time. */
async function claimAlone(url: string, admin: Redis, groups: number, n: number, round: number): Promise<ClaimRound> {
  await admin.flushall();
  const prefix = `claim-${groups}-${round}`;
  await enqueueJobs(url, prefix, groups, n);
  const redis = new Redis(url);
  try {
    const store = new Store(redis, prefix);
    await store.register('w', LEASE);
    const runs: Array<{ token: number; payload: string }> = [];
    await admin.config('RESETSTAT');
    let claims = 0;
    while (runs.length < n) {
      const claimed = await store.claim('w', CLAIM, CLAIM, SELECTION, LEASE);
      if (claimed === 'lost') throw new Error('lease lost');
      claims++;
      if (claimed.runs.length === 0) throw new Error(`${groups} groups: a claim found nothing with ${n - runs.length} jobs left`);
      runs.push(...claimed.runs);
    }
    const claimUsec = await scriptMicros(admin);
    await admin.config('RESETSTAT');
    let finishes = 0;
    for (let i = 0; i < runs.length; i += CLAIM) {
      const acks = runs.slice(i, i + CLAIM).map((run) => ({ job: decodeJob(run.token, run.payload), outcome: 'done' as const, status: 200 }));
      if ((await store.finish('w', acks)) === 'lost') throw new Error('lease lost');
      finishes++;
    }
    const finishUsec = await scriptMicros(admin);
    return { claimMicros: claimUsec / claims, claimMicrosPerJob: claimUsec / n, finishMicros: finishUsec / finishes, finishMicrosPerJob: finishUsec / n };
  } finally {
    redis.disconnect();
  }
}

export interface MemoryRound {
  n: number;
  /** Waiting jobs, used_memory: bytes per job with no group, and with each job in a group of its own. */
  ungroupedBytesPerJob: number;
  groupedBytesPerJob: number;
  bytesPerGroup: number;
  /** The same once every job has been claimed (one run each, not finished). */
  runningUngroupedBytesPerJob: number;
  runningGroupedBytesPerJob: number;
  bytesPerRunningGroup: number;
  /** MEMORY USAGE of the keys per group, by what they hold (waiting; then with a run). */
  keysPerGroup: Record<string, number>;
  keysPerRunningGroup: Record<string, number>;
}

/** What a key holds, for the breakdown of a group's bytes. */
function kindOf(key: string): string {
  // A level's own lists and a group's: the payloads are in both, so only their difference is the group's.
  if (/:L[12]:(g:.*:)?(execute|discard|last|last:order|last:newest)$/.test(key)) return 'queue lists';
  if (/:L[12]:groups$/.test(key)) return 'ring';
  if (key.endsWith(':groups:running')) return 'groups:running';
  return 'other keys';
}

/**
 * MEMORY USAGE (every element counted) of every key, summed by kindOf; on a connection of its
 * own, closed after, so the admin connection's buffers (read in used_memory) stay small.
 */
async function keyBytes(url: string): Promise<Record<string, number>> {
  const redis = new Redis(url);
  const out: Record<string, number> = {};
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
      cursor = next;
      const sizes = await Promise.all(keys.map((k) => redis.memory('USAGE', k, 'SAMPLES', 0)));
      keys.forEach((k, i) => (out[kindOf(k)] = (out[kindOf(k)] ?? 0) + Number(sizes[i] ?? 0)));
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return out;
}

/**
 * used_memory with the clients that wrote gone (their buffers freed), read after Redis had time
 * to close them; the scripts are loaded by the drains before, so their cache is in `before` too.
 */
async function settledMemory(admin: Redis): Promise<number> {
  await sleep(300);
  return usedMemory(admin);
}

async function memoryOf(
  url: string,
  admin: Redis,
  groups: number,
  n: number,
): Promise<{ waiting: number; running: number; waitingKeys: Record<string, number>; runningKeys: Record<string, number> }> {
  await admin.flushall();
  const prefix = `mem-${groups}`;
  const before = await settledMemory(admin);
  await enqueueJobs(url, prefix, groups, n);
  const waiting = ((await settledMemory(admin)) - before) / n;
  const waitingKeys = await keyBytes(url);
  const redis = new Redis(url);
  try {
    const store = new Store(redis, prefix);
    await store.register('w', LEASE);
    let taken = 0;
    while (taken < n) {
      const claimed = await store.claim('w', 500, 500, SELECTION, LEASE);
      if (claimed === 'lost' || claimed.runs.length === 0) throw new Error(`memory: claimed ${taken} of ${n}`);
      taken += claimed.runs.length;
    }
  } finally {
    redis.disconnect();
  }
  return { waiting, running: ((await settledMemory(admin)) - before) / n, waitingKeys, runningKeys: await keyBytes(url) };
}

async function memoryRound(url: string, admin: Redis, n: number): Promise<MemoryRound> {
  const plain = await memoryOf(url, admin, 0, n);
  const grouped = await memoryOf(url, admin, n, n);
  await admin.flushall();
  const perGroup = (g: Record<string, number>, p: Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const kind of new Set([...Object.keys(g), ...Object.keys(p)])) out[kind] = ((g[kind] ?? 0) - (p[kind] ?? 0)) / n;
    return out;
  };
  return {
    n,
    ungroupedBytesPerJob: plain.waiting,
    groupedBytesPerJob: grouped.waiting,
    bytesPerGroup: grouped.waiting - plain.waiting,
    runningUngroupedBytesPerJob: plain.running,
    runningGroupedBytesPerJob: grouped.running,
    bytesPerRunningGroup: grouped.running - plain.running,
    keysPerGroup: perGroup(grouped.waitingKeys, plain.waitingKeys),
    keysPerRunningGroup: perGroup(grouped.runningKeys, plain.runningKeys),
  };
}

export interface GroupsResults {
  jobs: number;
  rounds: number;
  loadBefore: string;
  loadAfter: string;
  base: CompareResults;
  /** Keyed `base` and `tree`. */
  claimCalls: Record<string, ClaimCallCost[]>;
  /** Keyed `<groups>x<workers>`. */
  drain: Record<string, GroupDrainRound[]>;
  bullmq: Record<string, { jobsPerSecond: number; bytesPerJob: number }[]>;
  claim: Record<string, ClaimRound[]>;
  memory: Record<string, MemoryRound[]>;
}

type Step = { kind: 'switchyard'; groups: number; workers: number } | { kind: 'bullmq'; workers: number };

export async function benchGroups(options: {
  rounds: number;
  jobs: number;
  baseRef: string;
  baseRoot?: string;
  memoryGroups: number[];
}): Promise<GroupsResults> {
  const loadBefore = loadAverage();
  // The base is checked out and built here unless given built: its queue engine is loaded again after the gate.
  const prepared = options.baseRoot ? undefined : prepareRef(options.baseRef);
  const baseRoot = options.baseRoot ?? prepared!.root;
  try {
    return await benchGroupsWith(baseRoot, options, loadBefore);
  } finally {
    prepared?.remove();
  }
}

async function benchGroupsWith(
  baseRoot: string,
  options: { rounds: number; jobs: number; baseRef: string; memoryGroups: number[] },
  loadBefore: string,
): Promise<GroupsResults> {
  process.stderr.write(`groups: no groups, ${options.baseRef} against this tree (the regression gate)…\n`);
  const base = await runCompare({ ref: options.baseRef, refRoot: baseRoot, rounds: options.rounds, jobs: options.jobs, requests: options.jobs });
  const results: GroupsResults = {
    jobs: options.jobs,
    rounds: options.rounds,
    loadBefore,
    loadAfter: '',
    base,
    claimCalls: {},
    drain: {},
    bullmq: {},
    claim: {},
    memory: {},
  };
  const steps: Step[] = [
    ...WORKER_COUNTS.flatMap((workers) => GROUP_COUNTS.map((groups): Step => ({ kind: 'switchyard', groups, workers }))),
    ...WORKER_COUNTS.map((workers): Step => ({ kind: 'bullmq', workers })),
  ];
  const server = await startRedisServer();
  const admin = new Redis(server.url);
  try {
    const builds = [
      { name: 'base', root: baseRoot },
      { name: 'tree', root: ROOT },
    ];
    for (let round = 0; round < options.rounds; round++) {
      for (const build of round % 2 ? [...builds].reverse() : builds) {
        (results.claimCalls[build.name] ??= []).push(await claimCallCost(build.root, build.name, server.url, admin));
      }
      for (const step of round % 2 ? [...steps].reverse() : steps) {
        if (step.kind === 'bullmq') {
          const r = await drainPeer('bullmq', step.workers, options.jobs, server.url, admin, round);
          (results.bullmq[step.workers] ??= []).push({ jobsPerSecond: r.rate, bytesPerJob: r.bytes });
          process.stderr.write(`groups round ${round + 1}: BullMQ, ${step.workers} worker(s): ${Math.round(r.rate)} jobs/s\n`);
          continue;
        }
        const r = await drainGroups(server.url, admin, step.groups, step.workers, options.jobs, round);
        (results.drain[`${step.groups}x${step.workers}`] ??= []).push(r);
        process.stderr.write(
          `groups round ${round + 1}: ${step.groups} groups, ${step.workers} worker(s): ${Math.round(r.jobsPerSecond)} jobs/s, ` +
            `${r.scriptMicrosPerJob.toFixed(2)} µs in scripts per job, ${r.redisCpuMicrosPerJob.toFixed(1)} µs Redis CPU per job\n`,
        );
      }
      const groupCounts = round % 2 ? [...GROUP_COUNTS].reverse() : GROUP_COUNTS;
      for (const groups of groupCounts) {
        const r = await claimAlone(server.url, admin, groups, options.jobs, round);
        (results.claim[groups] ??= []).push(r);
        process.stderr.write(`groups round ${round + 1}: claim alone, ${groups} groups: ${r.claimMicros.toFixed(1)} µs per claim of ${CLAIM}\n`);
      }
      // The first measurement of a fresh state reads 100-200 B per job more (allocations Redis
      // makes once): a pass before the first round, not kept.
      if (round === 0) await memoryRound(server.url, admin, 1000);
      for (const n of options.memoryGroups) {
        const r = await memoryRound(server.url, admin, n);
        (results.memory[n] ??= []).push(r);
        process.stderr.write(`groups round ${round + 1}: memory, ${n} groups: ${r.bytesPerGroup.toFixed(0)} B per active group\n`);
      }
    }
  } finally {
    admin.disconnect();
    server.stop();
  }
  results.loadAfter = loadAverage();
  return results;
}

const fmt = (x: number, digits = 0): string => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Base and tree, a claim call with no group anywhere: Redis µs, and the commands whose count differs. */
function claimCallTable(r: GroupsResults): string[] {
  const base = r.claimCalls.base ?? [];
  const tree = r.claimCalls.tree ?? [];
  if (base.length === 0 || tree.length === 0) return [];
  const med = (rows: ClaimCallCost[], pick: (x: ClaimCallCost) => number): number => median(rows.map(pick));
  const differing = (which: 'one' | 'empty'): string => {
    const names = new Set([...Object.keys(base[0][which]), ...Object.keys(tree[0][which])]);
    const diffs: string[] = [];
    for (const name of [...names].sort()) {
      const b = med(base, (x) => x[which][name] ?? 0);
      const t = med(tree, (x) => x[which][name] ?? 0);
      if (Math.abs(t - b) >= 0.01) diffs.push(`${name.toUpperCase()} ${b.toFixed(2)} → ${t.toFixed(2)}`);
    }
    return diffs.join(', ') || 'none';
  };
  return [
    'A claim call with no group anywhere (5,000 calls one after another; Redis µs per call from INFO commandstats; the commands whose count per call differs):',
    '',
    '| | base, µs per call | tree, µs per call | ratio | commands per call, base → tree |',
    '|---|---|---|---|---|',
    `| claim 1 from a queue of many | ${med(base, (x) => x.oneMicros).toFixed(2)} | ${med(tree, (x) => x.oneMicros).toFixed(2)} | ${(med(tree, (x) => x.oneMicros) / med(base, (x) => x.oneMicros)).toFixed(2)} | ${differing('one')} |`,
    `| claim with nothing waiting | ${med(base, (x) => x.emptyMicros).toFixed(2)} | ${med(tree, (x) => x.emptyMicros).toFixed(2)} | ${(med(tree, (x) => x.emptyMicros) / med(base, (x) => x.emptyMicros)).toFixed(2)} | ${differing('empty')} |`,
  ];
}

export function groupsTable(r: GroupsResults): string {
  const med = <T>(rows: T[] | undefined, pick: (x: T) => number): number => median((rows ?? []).map(pick));
  const groupsLabel = (g: number): string => (g === 0 ? 'no group' : `${fmt(g)} group${g === 1 ? '' : 's'}`);
  const out: string[] = [];
  out.push(
    `${r.rounds} rounds interleaved, medians; ${fmt(r.jobs)} jobs per drain; load average before ${r.loadBefore}, after ${r.loadAfter}.`,
    '',
    `**1. No groups: the base (${r.base.commit.slice(0, 7)}, before groups) against this tree** (the regression gate, bench/compare.ts)`,
    '',
    compareTable(r.base),
    '',
    ...claimCallTable(r),
    '',
    '**2. Drain by worker processes** (--concurrency 50 each, no-op route, no group cap or rate; between 10 % and 90 % drained; ' +
      'Redis figures from INFO over the same window: every script the workers ran, claims with their settles riding along, settles alone, lease renewals)',
    '',
    '| jobs spread over | workers | jobs/s | / no group | Redis µs in scripts per job | script calls per job | Redis µs per script call | Redis CPU µs per job | worker CPU µs per job | enqueue, Redis µs per job |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const workers of WORKER_COUNTS) {
    const none = med(r.drain[`0x${workers}`], (x) => x.jobsPerSecond);
    for (const groups of GROUP_COUNTS) {
      const rows = r.drain[`${groups}x${workers}`];
      if (!rows) continue;
      const rate = med(rows, (x) => x.jobsPerSecond);
      out.push(
        `| ${groupsLabel(groups)} | ${workers} | ${fmt(rate)} | ${(rate / none).toFixed(2)} | ${med(rows, (x) => x.scriptMicrosPerJob).toFixed(2)} | ` +
          `${med(rows, (x) => x.scriptCallsPerJob).toFixed(3)} | ${med(rows, (x) => x.scriptMicrosPerJob / x.scriptCallsPerJob).toFixed(1)} | ` +
          `${med(rows, (x) => x.redisCpuMicrosPerJob).toFixed(1)} | ${med(rows, (x) => x.workerCpuMicrosPerJob).toFixed(1)} | ${med(rows, (x) => x.enqueueMicrosPerJob).toFixed(2)} |`,
      );
    }
    const bull = r.bullmq[workers];
    if (bull) {
      const rate = med(bull, (x) => x.jobsPerSecond);
      out.push(`| BullMQ ${'plain queue'} (no groups) | ${workers} | ${fmt(rate)} | ${(rate / none).toFixed(2)} | | | | | | |`);
    }
  }
  // The commands the scripts ran per job, one worker: where a group's cost is.
  const names = new Set<string>();
  for (const groups of GROUP_COUNTS)
    for (const row of r.drain[`${groups}x1`] ?? []) for (const [name, v] of Object.entries(row.commandsPerJob)) if (v >= 0.005) names.add(name);
  out.push(
    '',
    "Redis commands per job drained, 1 worker: those the scripts ran and the workers' own (BLPOP), from INFO commandstats, the benchmark's own reads taken out:",
    '',
    `| command | ${GROUP_COUNTS.map(groupsLabel).join(' | ')} |`,
    `|---|${GROUP_COUNTS.map(() => '---').join('|')}|`,
  );
  for (const name of [...names].sort()) {
    out.push(`| ${name.toUpperCase()} | ${GROUP_COUNTS.map((g) => med(r.drain[`${g}x1`], (x) => x.commandsPerJob[name] ?? 0).toFixed(2)).join(' | ')} |`);
  }
  out.push(
    '',
    `**3. The claim alone** (one claimer in the benchmark's process, ${CLAIM} per claim, nothing riding along; then settled ${CLAIM} per finishJobs call)`,
    '',
    '| jobs spread over | Redis µs per claim call | per job claimed | Redis µs per finish call | per job settled |',
    '|---|---|---|---|---|',
  );
  for (const groups of GROUP_COUNTS) {
    const rows = r.claim[groups];
    if (!rows) continue;
    out.push(
      `| ${groupsLabel(groups)} | ${med(rows, (x) => x.claimMicros).toFixed(1)} | ${med(rows, (x) => x.claimMicrosPerJob).toFixed(2)} | ` +
        `${med(rows, (x) => x.finishMicros).toFixed(1)} | ${med(rows, (x) => x.finishMicrosPerJob).toFixed(2)} |`,
    );
  }
  out.push(
    '',
    '**4. Memory** (INFO memory used_memory, read 300 ms after the writing client left; N jobs waiting, then each with one run claimed and not finished)',
    '',
    '| N | bytes per job, no group | bytes per job, each in its own group | **bytes per active group** | per job once claimed, no group / own group | bytes per group with a run |',
    '|---|---|---|---|---|---|',
  );
  for (const [n, rows] of Object.entries(r.memory)) {
    out.push(
      `| ${fmt(Number(n))} | ${med(rows, (x) => x.ungroupedBytesPerJob).toFixed(1)} | ${med(rows, (x) => x.groupedBytesPerJob).toFixed(1)} | **${med(rows, (x) => x.bytesPerGroup).toFixed(0)}** | ` +
        `${med(rows, (x) => x.runningUngroupedBytesPerJob).toFixed(1)} / ${med(rows, (x) => x.runningGroupedBytesPerJob).toFixed(1)} | ${med(rows, (x) => x.bytesPerRunningGroup).toFixed(0)} |`,
    );
  }
  const kinds = new Set<string>();
  for (const rows of Object.values(r.memory))
    for (const row of rows) for (const k of [...Object.keys(row.keysPerGroup), ...Object.keys(row.keysPerRunningGroup)]) kinds.add(k);
  out.push(
    '',
    "The same by key: MEMORY USAGE of every key (all elements counted), grouped minus ungrouped, per group. The queue lists hold the payloads in both cases, so their difference is the overhead of the group's own lists; the keyspace's table (an entry per key) is in used_memory only:",
    '',
    `| N | ${[...kinds].map((k) => `${k}: waiting / with a run`).join(' | ')} |`,
    `|---|${[...kinds].map(() => '---').join('|')}|`,
  );
  for (const [n, rows] of Object.entries(r.memory)) {
    const cell = (k: string): string =>
      `${med(rows, (x) => x.keysPerGroup[k] ?? 0).toFixed(0)} / ${med(rows, (x) => x.keysPerRunningGroup[k] ?? 0).toFixed(0)}`;
    out.push(`| ${fmt(Number(n))} | ${[...kinds].map(cell).join(' | ')} |`);
  }
  const bull1 = r.bullmq[1] ? med(r.bullmq[1], (x) => x.bytesPerJob) : NaN;
  out.push('', `BullMQ's plain queue, Redis bytes per waiting job in the same runs: ${fmt(bull1)}.`);
  return out.join('\n');
}
