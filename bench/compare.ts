// The regression gate: `npm run bench -- --compare <git ref> [--rounds 3] [--jobs 20000] [--quick]`.
// The ref is checked out into a temporary git worktree (the work tree's node_modules linked in,
// or its own `npm ci` when its package-lock.json differs), built with its own tsc, and measured
// against this checkout in one run, rounds interleaved (ref first in even rounds, this tree first
// in odd ones), medians, ratios tree / ref:
//   sync     each tree's gateway serving the same app (this tree's bench/minimal-app), h2load
//            1 connection × 64 streams: calls/s, p50/p99, gateway CPU µs per call (/proc);
//   enqueue  an async call (`reply: false`) through each tree's gateway: calls/s, gateway CPU;
//   drain    N jobs enqueued straight into Redis by each tree's own queue engine (same payload),
//            then ONE worker process of that tree at --concurrency 50 drains them: jobs/s,
//            worker CPU, Redis CPU (INFO cpu) and script time (INFO commandstats) per job;
//   store    bench/store-compare's measurements of both queue engines.
// Processes are started through each tree's bin/switchyard.js, the one path every layout keeps;
// modules are loaded by path only for the direct enqueue and the queue engine, with fallbacks.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { h2load, loadAverage, median, ROOT, sleep, startGateway, startNode, startRedisServer, type Child, type LoadResult } from './lib';
import { compareStores, scriptMicros, STORE_ROWS, type StoreRound } from './store-compare';

export type Side = 'ref' | 'tree';
const SIDES: readonly Side[] = ['ref', 'tree'];

export interface CompareOptions {
  ref: string;
  rounds: number;
  /** Jobs per drain round (and per store-compare phase, capped at 10,000). */
  jobs: number;
  /** h2load requests per sync and per enqueue round. */
  requests: number;
  /**
   * Both sides run this work tree, each with its own environment (e.g. tracing off and on):
   * no ref is built, and the queue engine phase, which no environment changes, is skipped.
   */
  sameTree?: { env: Record<Side, NodeJS.ProcessEnv> };
  /**
   * A checkout of the ref already built (its dist/ and node_modules in place): measured as it is,
   * neither checked out nor built nor removed here.
   */
  refRoot?: string;
}

const APP = path.join(ROOT, 'dist', 'bench', 'minimal-app.js');
const SYNC_PARAMS = '{"url":"/noop","method":"GET"}';
const ASYNC_PARAMS = JSON.stringify({
  url: '/noop',
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  content: { a: 1 },
  reply: false,
  queue_detail: { level: 1, limit_policy: 'execute' },
});
const LOAD = { clients: 1, streams: 64 };
const LIMITS = { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 };
const ADMISSION = { capacity: 1e9, discardThreshold: 1e9 };
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** Rounds in order: ref first in even rounds, the tree first in odd ones. */
function inTurn(round: number): readonly Side[] {
  return round % 2 ? [...SIDES].reverse() : SIDES;
}

function git(args: string[], cwd = ROOT): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  // Fields after the command name (which sits in parentheses and may hold spaces): utime is the 14th field overall.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/** Share of the machine's CPU time busy over `ms`, from /proc/stat. */
async function machineBusy(ms: number): Promise<number> {
  const sample = (): { idle: number; total: number } => {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { idle: fields[3] + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
  };
  const a = sample();
  await sleep(ms);
  const b = sample();
  return b.total === a.total ? 0 : 1 - (b.idle - a.idle) / (b.total - a.total);
}

/**
 * What a lock file installs: every package's path, version and integrity. The package's own
 * entry and the dev/prod marks are left out (moving a dependency to devDependencies installs
 * the same tree), so such a ref still shares this tree's node_modules.
 */
function normalizedLock(file: string): string {
  if (!existsSync(file)) return '';
  const lock = JSON.parse(readFileSync(file, 'utf8')) as { packages?: Record<string, { version?: string; integrity?: string; link?: boolean }> };
  const installed = Object.entries(lock.packages ?? {})
    .filter(([where]) => where !== '')
    .map(([where, p]) => `${where} ${p.version ?? ''} ${p.integrity ?? ''} ${p.link ? 'link' : ''}`);
  return installed.sort().join('\n');
}

export interface PreparedRef {
  root: string;
  commit: string;
  installed: 'linked' | 'npm ci';
  remove(): void;
}

/** `git worktree add --detach` of the ref into a temporary folder, dependencies, its own build. */
export function prepareRef(ref: string): PreparedRef {
  let commit: string;
  try {
    commit = git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  } catch {
    throw new Error(`${ref} is not a commit of this repository (git rev-parse ${ref})`);
  }
  const base = mkdtempSync(path.join(tmpdir(), 'sy-compare-'));
  const root = path.join(base, 'tree');
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    spawnSync('git', ['worktree', 'remove', '--force', root], { cwd: ROOT, stdio: 'ignore' });
    rmSync(base, { recursive: true, force: true });
    spawnSync('git', ['worktree', 'prune'], { cwd: ROOT, stdio: 'ignore' });
  };
  // Also on Ctrl-C or a crash: process.exit runs 'exit' listeners, and removal is synchronous.
  process.once('exit', remove);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  try {
    process.stderr.write(`compare: checking out ${ref} (${commit.slice(0, 10)}) into ${root}\n`);
    git(['worktree', 'add', '--detach', root, commit]);
    let installed: PreparedRef['installed'] = 'linked';
    if (normalizedLock(path.join(root, 'package-lock.json')) === normalizedLock(path.join(ROOT, 'package-lock.json'))) {
      symlinkSync(realpathSync(path.join(ROOT, 'node_modules')), path.join(root, 'node_modules'), 'dir');
    } else {
      process.stderr.write(`compare: ${ref} has other dependencies (package-lock.json differs): npm ci in the temporary tree…\n`);
      execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
      installed = 'npm ci';
    }
    const config = existsSync(path.join(root, 'tsconfig.build.json')) ? 'tsconfig.build.json' : 'tsconfig.json';
    process.stderr.write(`compare: building ${ref} (tsc -p ${config})…\n`);
    const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
    const build = spawnSync(process.execPath, [tsc, '-p', config], { cwd: root, encoding: 'utf8' });
    if (!existsSync(path.join(root, 'dist', 'cli', 'main.js')) && !existsSync(path.join(root, 'dist', 'index.js')))
      throw new Error(`the build of ${ref} failed:\n${build.stdout}${build.stderr}`);
    if (build.status !== 0) process.stderr.write(`compare: tsc reported errors for ${ref} (emitted anyway):\n${build.stdout}`);
    return { root, commit, installed, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** A checkout of the ref built beforehand, used in place (`refRoot`). */
function builtCheckout(root: string): PreparedRef {
  if (!existsSync(path.join(root, 'bin', 'switchyard.js')) || !existsSync(path.join(root, 'dist')))
    throw new Error(`${root} is not a built checkout (bin/switchyard.js and dist/ expected: npx tsc -p tsconfig.build.json there)`);
  return { root, commit: git(['rev-parse', 'HEAD'], root), installed: 'linked', remove: () => undefined };
}

/** The first of `candidates` (paths under root/dist) that exists, required; the layout moved files over time. */
function requireFrom(root: string, candidates: string[]): Record<string, unknown> {
  for (const candidate of candidates) {
    const file = path.join(root, 'dist', candidate);
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- two builds of one module, loaded by path
    if (existsSync(file)) return require(file) as Record<string, unknown>;
  }
  throw new Error(`none of ${candidates.join(', ')} in ${root}/dist`);
}

interface Engine {
  /** ioredis as that tree resolves it (its own copy after an npm ci). */
  Redis: new (url: string, options?: object) => Redis;
  enqueue(redis: Redis, prefix: string, n: number): Promise<void>;
}

function engineAt(root: string): Engine {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- that tree's own ioredis
  const ioredis = require(require.resolve('ioredis', { paths: [root] })) as { default: Engine['Redis'] };
  const { parseParams } = requireFrom(root, ['shared/call/params.js', 'shared/params.js']) as { parseParams: (text: string, limits: object) => unknown };
  const { Queues } = requireFrom(root, ['shared/store/queues.js', 'shared/queues.js']) as {
    Queues: new (redis: Redis, prefix: string) => { enqueue(call: unknown, limits: object): Promise<unknown> };
  };
  return {
    Redis: ioredis.default,
    async enqueue(redis, prefix, n) {
      const queues = new Queues(redis, prefix);
      const call = parseParams(ASYNC_PARAMS, LIMITS);
      for (let i = 0; i < n; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, n - i) }, () => queues.enqueue(call, ADMISSION)));
    },
  };
}

interface GatewayRound extends LoadResult {
  cpuMicrosPerCall: number;
}

interface DrainRound {
  jobsPerSecond: number;
  workerMicrosPerJob: number;
  redisMicrosPerJob: number;
  scriptMicrosPerJob: number;
}

export interface CompareResults {
  ref: string;
  commit: string;
  installed: PreparedRef['installed'];
  options: CompareOptions;
  loadBefore: string;
  loadAfter: string;
  busyBefore: number;
  busyAfter: number;
  sync: Record<Side, GatewayRound[]>;
  enqueue: Record<Side, GatewayRound[]>;
  drain: Record<Side, DrainRound[]>;
  store: Record<Side, StoreRound[]> | { error: string };
}

function gatewayLoad(gateway: Child, params: string, requests: number): GatewayRound {
  const pid = gateway.child.pid!;
  const before = cpuSeconds(pid);
  const load = h2load(Number(gateway.fields.port), params, { ...LOAD, requests });
  const cpu = cpuSeconds(pid) - before;
  if (load.failed > 0) throw new Error(`${load.failed} of ${requests} calls failed`);
  return { ...load, cpuMicrosPerCall: (cpu * 1e6) / requests };
}

/** Sync and enqueue through each tree's gateway, both gateways up for the whole phase. */
async function gatewayPhase(roots: Record<Side, string>, options: CompareOptions, results: CompareResults): Promise<void> {
  const server = await startRedisServer();
  const gateways = {} as Record<Side, Child>;
  const admin = new Redis(server.url);
  try {
    for (const side of SIDES) {
      gateways[side] = await startGateway({ root: roots[side], app: APP, redis: server.url, prefix: `gate-${side}`, env: options.sameTree?.env[side] });
    }
    // Warm-up: JIT and connection set-up out of the measured rounds.
    for (const side of SIDES) {
      gatewayLoad(gateways[side], SYNC_PARAMS, 20_000);
      gatewayLoad(gateways[side], ASYNC_PARAMS, 10_000);
    }
    await admin.flushall();
    for (let round = 0; round < options.rounds; round++) {
      for (const side of inTurn(round)) {
        const r = gatewayLoad(gateways[side], SYNC_PARAMS, options.requests);
        results.sync[side].push(r);
        process.stderr.write(`compare round ${round + 1} sync ${side}: ${Math.round(r.rps)}/s, ${r.cpuMicrosPerCall.toFixed(1)} µs CPU/call\n`);
      }
      for (const side of inTurn(round)) {
        const r = gatewayLoad(gateways[side], ASYNC_PARAMS, options.requests);
        const queued = await admin.llen(`{gate-${side}}:L1:execute`);
        // The jobs go, so that every round enqueues into the same empty queue.
        await admin.flushall();
        if (queued !== options.requests)
          process.stderr.write(`compare: ${side} gateway left ${queued} jobs in {gate-${side}}:L1:execute, not ${options.requests}\n`);
        results.enqueue[side].push(r);
        process.stderr.write(`compare round ${round + 1} enqueue ${side}: ${Math.round(r.rps)}/s, ${r.cpuMicrosPerCall.toFixed(1)} µs CPU/call\n`);
      }
    }
  } finally {
    await Promise.all(Object.values(gateways).map((g) => g.stop()));
    admin.disconnect();
    server.stop();
  }
}

export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** The waiting list the jobs went to: `{prefix}:L1:execute`, else whichever list holds all n. */
async function waitingList(redis: Redis, prefix: string, n: number): Promise<string> {
  const usual = `{${prefix}}:L1:execute`;
  if ((await redis.llen(usual)) === n) return usual;
  for (const key of await redis.keys(`*${prefix}*`)) if ((await redis.type(key)) === 'list' && (await redis.llen(key)) === n) return key;
  throw new Error(`no list of ${n} jobs under ${prefix}`);
}

/**
 * One drain round of one tree: a fresh Redis state, n jobs enqueued by its queue engine, then
 * one worker process of that tree. Figures are taken between 10 % and 90 % drained (start-up
 * of the worker process left out), from the jobs that left the waiting list in between.
 */
async function drainRound(
  side: Side,
  root: string,
  engine: Engine,
  url: string,
  redis: Redis,
  n: number,
  round: number,
  env: NodeJS.ProcessEnv = {},
): Promise<DrainRound> {
  await redis.flushall();
  await redis.config('RESETSTAT');
  const prefix = `drain-${side}-${round}`;
  const client = new engine.Redis(url, { enableAutoPipelining: true });
  await engine.enqueue(client, prefix, n);
  client.disconnect();
  const key = await waitingList(redis, prefix, n);
  const worker = await startNode(
    [path.join(root, 'bin', 'switchyard.js'), 'worker', '--app', APP, '--redis', url, '--prefix', prefix, '--admin-port', '0', '--concurrency', '50'],
    'worker ready',
    env,
  );
  const pid = worker.child.pid!;
  const sample = async (): Promise<{ left: number; at: number; worker: number; redis: number; scripts: number }> => {
    const [left, redisCpu, scripts] = await Promise.all([redis.llen(key), redisCpuSeconds(redis), scriptMicros(redis)]);
    return { left, at: performance.now(), worker: cpuSeconds(pid), redis: redisCpu, scripts };
  };
  try {
    let from: Awaited<ReturnType<typeof sample>> | undefined;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const left = await redis.llen(key);
      if (!from && left <= n * 0.9) from = await sample();
      if (from && left <= n * 0.1) {
        const to = await sample();
        const jobs = from.left - to.left;
        return {
          jobsPerSecond: jobs / ((to.at - from.at) / 1000),
          workerMicrosPerJob: ((to.worker - from.worker) * 1e6) / jobs,
          redisMicrosPerJob: ((to.redis - from.redis) * 1e6) / jobs,
          scriptMicrosPerJob: (to.scripts - from.scripts) / jobs,
        };
      }
      await sleep(5);
    }
    throw new Error(`the ${side} worker did not drain ${n} jobs in 120 s`);
  } finally {
    await worker.stop();
  }
}

async function drainPhase(roots: Record<Side, string>, options: CompareOptions, results: CompareResults): Promise<void> {
  const engines = { ref: engineAt(roots.ref), tree: engineAt(ROOT) };
  const server = await startRedisServer();
  const redis = new Redis(server.url);
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (const side of inTurn(round)) {
        const r = await drainRound(side, roots[side], engines[side], server.url, redis, options.jobs, round, options.sameTree?.env[side]);
        results.drain[side].push(r);
        process.stderr.write(
          `compare round ${round + 1} drain ${side}: ${Math.round(r.jobsPerSecond)} jobs/s, worker ${r.workerMicrosPerJob.toFixed(1)} µs/job, Redis ${r.redisMicrosPerJob.toFixed(1)} µs/job, scripts ${r.scriptMicrosPerJob.toFixed(1)} µs/job\n`,
        );
      }
    }
  } finally {
    redis.disconnect();
    server.stop();
  }
}

export async function runCompare(options: CompareOptions): Promise<CompareResults> {
  const loadBefore = loadAverage();
  const busyBefore = await machineBusy(1000);
  const prepared: PreparedRef = options.sameTree
    ? { root: ROOT, commit: 'work tree', installed: 'linked', remove: () => undefined }
    : options.refRoot
      ? builtCheckout(options.refRoot)
      : prepareRef(options.ref);
  const empty = <T>(): Record<Side, T[]> => ({ ref: [], tree: [] });
  const results: CompareResults = {
    ref: options.ref,
    commit: prepared.commit,
    installed: prepared.installed,
    options,
    loadBefore,
    loadAfter: '',
    busyBefore,
    busyAfter: 0,
    sync: empty(),
    enqueue: empty(),
    drain: empty(),
    store: empty(),
  };
  try {
    const roots = { ref: prepared.root, tree: ROOT };
    await gatewayPhase(roots, options, results);
    await drainPhase(roots, options, results);
    if (options.sameTree) results.store = { error: 'not compared: both sides run the same queue engine' };
    else
      try {
        const store = await compareStores(
          [
            { name: 'ref', root: prepared.root },
            { name: 'tree', root: ROOT },
          ],
          {
            jobs: Math.min(options.jobs, 10_000),
            rounds: options.rounds,
            onRound: (side, round, r) =>
              process.stderr.write(
                `compare round ${round + 1} queue engine ${side}: drain ${Math.round(r.drainPerSecond)} jobs/s, ${r.drainMicros.toFixed(2)} Redis µs/job\n`,
              ),
          },
        );
        results.store = { ref: store.get('ref')!, tree: store.get('tree')! };
      } catch (err) {
        // The queue engine is loaded by path: a ref from before its interface settled cannot be compared this way.
        results.store = { error: (err as Error).message.split('\n')[0] };
        process.stderr.write(`compare: queue engine not compared: ${(err as Error).stack}\n`);
      }
  } finally {
    prepared.remove();
  }
  results.loadAfter = loadAverage();
  results.busyAfter = await machineBusy(1000);
  return results;
}

/** A ratio this far on the worse side is flagged: beyond the ±5-10 % this 2-core machine moves between runs. */
const FLAG = 0.1;

export function compareTable(r: CompareResults): string {
  const rows: string[] = [];
  /** `higher`: a larger figure is better (calls/s, jobs/s); else a smaller one (ms, µs). */
  const row = (label: string, values: Record<Side, number[]>, digits: number, better: 'higher' | 'lower'): void => {
    const ref = median(values.ref);
    const tree = median(values.tree);
    const ratio = tree / ref;
    const worse = better === 'higher' ? ratio < 1 - FLAG : ratio > 1 + FLAG;
    const each = values.ref.map((x, i) => (values.tree[i] / x).toFixed(2)).join(', ');
    rows.push(`| ${label} | ${ref.toFixed(digits)} | ${tree.toFixed(digits)} | ${worse ? `**${ratio.toFixed(2)}** worse` : ratio.toFixed(2)} | ${each} |`);
  };
  const of = <T>(data: Record<Side, T[]>, pick: (x: T) => number): Record<Side, number[]> => ({ ref: data.ref.map(pick), tree: data.tree.map(pick) });
  const load = `h2load ${LOAD.clients} conn × ${LOAD.streams} streams, ${r.options.requests} calls`;
  row(
    `sync through the gateway (${load}), calls/s`,
    of(r.sync, (x) => x.rps),
    0,
    'higher',
  );
  row(
    'sync, p50 ms',
    of(r.sync, (x) => x.p50ms),
    2,
    'lower',
  );
  row(
    'sync, p99 ms',
    of(r.sync, (x) => x.p99ms),
    2,
    'lower',
  );
  row(
    'sync, gateway CPU µs per call',
    of(r.sync, (x) => x.cpuMicrosPerCall),
    1,
    'lower',
  );
  row(
    `async enqueue through the gateway (reply: false, ${load}), calls/s`,
    of(r.enqueue, (x) => x.rps),
    0,
    'higher',
  );
  row(
    'async enqueue, p99 ms',
    of(r.enqueue, (x) => x.p99ms),
    2,
    'lower',
  );
  row(
    'async enqueue, gateway CPU µs per call',
    of(r.enqueue, (x) => x.cpuMicrosPerCall),
    1,
    'lower',
  );
  row(
    `async drain (${r.options.jobs} jobs, 1 worker × 50), jobs/s`,
    of(r.drain, (x) => x.jobsPerSecond),
    0,
    'higher',
  );
  row(
    'async drain, worker CPU µs per job',
    of(r.drain, (x) => x.workerMicrosPerJob),
    1,
    'lower',
  );
  row(
    'async drain, Redis CPU µs per job',
    of(r.drain, (x) => x.redisMicrosPerJob),
    1,
    'lower',
  );
  row(
    'async drain, time in scripts µs per job',
    of(r.drain, (x) => x.scriptMicrosPerJob),
    2,
    'lower',
  );
  let storeNote = '';
  if ('error' in r.store) storeNote = `\n\nQueue engine not compared: ${r.store.error}`;
  else {
    const store = r.store;
    for (const [label, field, digits] of STORE_ROWS)
      row(
        `queue engine: ${label}`,
        of(store, (x) => x[field]),
        digits,
        label.endsWith('/s') ? 'higher' : 'lower',
      );
  }
  const percent = (x: number): string => `${Math.round(x * 100)} %`;
  // Other work on the machine: the benchmark itself keeps about one core busy.
  const busiest = Math.max(...[r.loadBefore, r.loadAfter].map((l) => Number(l.split(' ')[0])));
  const warning =
    busiest > cpus().length
      ? `\n**The machine was busy (1-minute load ${busiest} on ${cpus().length} cores): ratios of single rounds move by 20-50 % then; run it again when it is quieter.**`
      : '';
  return (
    [
      `Ref \`${r.ref}\` = ${r.commit} (${r.installed === 'linked' ? "the work tree's node_modules" : 'its own npm ci'}) against the work tree; ` +
        `${r.options.rounds} rounds interleaved, each side first in turn; medians; ratio = tree / ref, ` +
        `**bold** where it is more than ${FLAG * 100} % on the worse side (above 1 is better for calls/s and jobs/s, worse for ms and µs).`,
      `${cpus().length} cores; load average before ${r.loadBefore}, after ${r.loadAfter}; ` +
        `CPU busy in the second before ${percent(r.busyBefore)}, in the second after ${percent(r.busyAfter)}.${warning}`,
      '',
      '| | ref | tree | ratio | each round |',
      '|---|---|---|---|---|',
      ...rows,
    ].join('\n') + storeNote
  );
}
