// Chaos, end to end: four real worker processes under a minute of steady `last` and `execute`
// traffic while a driver freezes them (SIGSTOP shorter and longer than the lease), kills
// them (SIGKILL, then a replacement), drops the Redis connections of one role of the processes
// (CLIENT KILL: gateway, worker, blocking or lease) and pauses Redis's clients (CLIENT PAUSE).
// Callers name their jobs (queue_detail.id) and send a call again after an answer that leaves
// the outcome open (503, a transport error): nothing is queued twice. Every run is recorded in a second Redis that nothing
// stops; afterwards the run records, the send log and the chaos log are checked against the
// delivery guarantees (docs/protocol.md section 5), and one summary line gives the figures.
import path from 'node:path';
import Redis from 'ioredis';
import { closeClients, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { inProcessGateway, killAll, logLines, sleep, startSwitchyard, waitFor, type SwitchyardProcess } from '../helpers/processes';
import { expectCleanState, failureOf } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'chaos-app.js');
const LEASE_MS = 2000;
// Finished jobs stay known (--keep-done) so that a caller's repeat of a call finds them: duplicate.
const WORKER_FLAGS = ['--lease', '2s', '--job-timeout', '10s', '--attempts', '50', '--concurrency', '8', '--backoff', '100ms', '--keep-done', '10m'];
/** Connection roles whose connections a Redis fault drops (shared/store/redis.ts). */
const ROLES = ['gateway', 'worker', 'blocking', 'lease'] as const;
const WORKERS = 4;
const CHAOS_MS = 60_000;
const DRAIN_MS = 60_000;
const LAST_KEYS = 300;
const MESSAGES_PER_SECOND = 200;
const SENDERS = 16;
const EXECUTE_SHARE = 0.2;

type Level = 1 | 2;

/** One run, assembled from its 'start' and 'end' entries (the fence identifies it). */
interface Run {
  id: string;
  key: string | null;
  level: Level;
  policy: string;
  version: number | null;
  seq: number | null;
  attempt: number;
  fence: number;
  pid: number;
  start: number;
  end: number | null;
  aborted: boolean | null;
}

interface Sent {
  policy: 'last' | 'execute';
  level: Level;
  key: string | null;
  version: number | null;
  seq: number | null;
  status: number;
  state: string | null;
  /** Date.now() when the answer came: an upper bound of when Redis accepted it. */
  answeredAt: number;
  error?: string;
  /** Answers before the final one that left the outcome open (a 503, a transport error): the call was sent again with its id. */
  retried: number;
}

interface Freeze {
  kind: 'short' | 'long';
  pid: number;
  stopAt: number;
  contAt: number;
}

interface Kill {
  pid: number;
  killAt: number;
}

/** A fault in Redis itself: a role's connections dropped, or every client paused. */
interface RedisFault {
  kind: 'cut' | 'pause';
  role?: (typeof ROLES)[number];
  at: number;
  ms?: number;
  connections?: number;
}

let queueRedis: TestRedis;
let recordRedis: TestRedis;
let queue: Redis;
let records: Redis;
let gateway: Awaited<ReturnType<typeof inProcessGateway>> | undefined;
let prefix: string;
let recordKey: string;

/** Every worker ever started (their logs are read at the end), and those alive now, by pid. */
const everyWorker: SwitchyardProcess[] = [];
const live = new Map<number, SwitchyardProcess>();
/** Pids under a chaos action: not picked again until it is over. */
const busy = new Set<number>();
const freezes: Freeze[] = [];
const kills: Kill[] = [];
const redisFaults: RedisFault[] = [];

beforeAll(async () => {
  [queueRedis, recordRedis] = await Promise.all([startRedis(), startRedis()]);
  queue = new Redis(queueRedis.url);
  records = new Redis(recordRedis.url);
  prefix = uniquePrefix('chaos');
  recordKey = `${prefix}:runs`;
});

afterAll(async () => {
  closeClients();
  await gateway?.stop();
  await killAll();
  // After a minute of chaos and the drain, the stored state holds every invariant (switchyard check).
  const problems = await failureOf(expectCleanState(queueRedis.url, prefix));
  queue.disconnect();
  records.disconnect();
  await Promise.all([queueRedis.close(), recordRedis.close()]);
  if (problems) throw problems;
});

const between = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];

async function addWorker(): Promise<SwitchyardProcess> {
  const w = await startSwitchyard('worker', ['--app', APP, '--redis', queueRedis.url, '--prefix', prefix, ...WORKER_FLAGS], {
    RECORD_URL: recordRedis.url,
    RECORD_KEY: recordKey,
  });
  everyWorker.push(w);
  live.set(w.child.pid!, w);
  return w;
}

// ---- chaos ----

async function freeze(w: SwitchyardProcess, kind: Freeze['kind'], ms: number): Promise<void> {
  const pid = w.child.pid!;
  busy.add(pid);
  const stopAt = Date.now();
  w.kill('SIGSTOP');
  await sleep(ms);
  w.kill('SIGCONT');
  freezes.push({ kind, pid, stopAt, contAt: Date.now() });
  busy.delete(pid);
}

async function killAndReplace(w: SwitchyardProcess): Promise<void> {
  const pid = w.child.pid!;
  busy.add(pid);
  live.delete(pid);
  const killAt = Date.now();
  w.kill('SIGKILL');
  await w.exited;
  kills.push({ pid, killAt });
  await addWorker();
}

/** Drops every connection of one role to the queue Redis, wherever its commands are. */
async function cutConnections(role: (typeof ROLES)[number]): Promise<void> {
  const at = Date.now();
  const ids = String(await queue.client('LIST'))
    .split('\n')
    .filter((line) => line.includes(` name=switchyard-${role} `))
    .map((line) => /^id=(\d+) /.exec(line)?.[1])
    .filter((id): id is string => id !== undefined);
  for (const id of ids) await queue.client('KILL', 'ID', id);
  redisFaults.push({ kind: 'cut', role, at, connections: ids.length });
}

/** Every client of the queue Redis waits (shorter than the lease: nothing may be lost to it). */
async function pauseClients(ms: number): Promise<void> {
  const at = Date.now();
  await queue.client('PAUSE', ms, 'ALL');
  redisFaults.push({ kind: 'pause', at, ms });
  await sleep(ms);
}

/** Every 1–2 s a Redis fault; every 2–4 s one action on a random worker that is not under one already. */
async function chaos(until: number): Promise<void> {
  const actions: Array<Promise<void>> = [];
  const faults = (async () => {
    for (;;) {
      await sleep(between(1000, 2000));
      if (Date.now() >= until) break;
      await (Math.random() < 0.7 ? cutConnections(pick(ROLES)) : pauseClients(between(200, 1000)));
    }
  })();
  actions.push(faults);
  for (;;) {
    await sleep(between(2000, 4000));
    if (Date.now() >= until) break;
    const candidates = [...live.values()].filter((w) => !busy.has(w.child.pid!));
    if (candidates.length === 0) continue;
    const victim = pick(candidates);
    const roll = Math.random() * 3;
    if (roll < 1) actions.push(freeze(victim, 'short', between(500, 1800)));
    else if (roll < 2) actions.push(freeze(victim, 'long', between(3000, 5000)));
    else actions.push(killAndReplace(victim));
  }
  await Promise.all(actions);
}

// ---- traffic ----

interface KeyState {
  name: string;
  level: Level;
  version: number;
  /** A message of this key is in flight: the next waits, so acceptance order is version order. */
  sending: boolean;
}

async function traffic(address: string, until: number): Promise<Sent[]> {
  const sent: Sent[] = [];
  const keys: KeyState[] = Array.from({ length: LAST_KEYS }, (_, i) => ({ name: `key-${i}`, level: i % 3 === 2 ? 2 : 1, version: 0, sending: false }));
  let seq = 0;
  let nextSlot = Date.now();
  const pace = async (): Promise<void> => {
    const now = Date.now();
    const slot = Math.max(now, nextSlot);
    nextSlot = slot + 1000 / MESSAGES_PER_SECOND;
    if (slot > now) await sleep(slot - now);
  };
  const sendOne = async (): Promise<void> => {
    let key: KeyState | undefined;
    let message: Omit<Sent, 'status' | 'state' | 'answeredAt' | 'retried'>;
    if (Math.random() < EXECUTE_SHARE) {
      message = { policy: 'execute', level: Math.random() < 0.7 ? 1 : 2, key: null, version: null, seq: ++seq };
    } else {
      do key = pick(keys);
      while (key.sending);
      key.sending = true;
      message = { policy: 'last', level: key.level, key: key.name, version: ++key.version, seq: null };
    }
    const content = message.policy === 'last' ? { key: message.key, version: message.version } : { seq: message.seq };
    // The caller's own id: an answer that leaves the outcome open is followed by the same call
    // again, which answers `duplicate` if the first one was queued after all.
    const id = `${message.policy === 'last' ? `${message.key}v${message.version}` : `s${message.seq}`}-L${message.level}`;
    let retried = 0;
    try {
      for (;;) {
        let answer;
        try {
          answer = await send('/apply', { address, level: message.level, policy: message.policy, key: message.key ?? undefined, content, deadline: 10, id });
        } catch (err) {
          if (Date.now() > until + 20_000) throw err;
          retried++;
          await sleep(100);
          continue;
        }
        if (answer.status === 503 && Date.now() <= until + 20_000) {
          retried++;
          await sleep(100);
          continue;
        }
        const data = answer.data as { state?: string };
        sent.push({ ...message, status: answer.status === 200 ? 201 : answer.status, state: data?.state ?? null, answeredAt: Date.now(), retried });
        break;
      }
    } catch (err) {
      sent.push({ ...message, status: -1, state: null, answeredAt: Date.now(), error: (err as Error).message, retried });
    } finally {
      if (key) key.sending = false;
    }
  };
  await Promise.all(
    Array.from({ length: SENDERS }, async () => {
      while (Date.now() < until) {
        await pace();
        await sendOne();
      }
    }),
  );
  return sent;
}

// ---- the run counter, sampled: a lower bound of when each run was claimed ----

/**
 * Fences come from INCR {p}:runs at claim time, so a run whose fence is above a sampled value
 * was claimed after that sample's GET was sent: the sample's time is a lower bound of its claim.
 */
function sampleRunCounter(): { stop(): Promise<void>; claimedAfter(fence: number): number } {
  const at: number[] = [];
  const value: number[] = [];
  const sampler = new Redis(queueRedis.url);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = Date.now();
      value.push(Number((await sampler.get(keysFor(prefix).runs)) ?? 0));
      at.push(t);
      await sleep(5);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      sampler.disconnect();
    },
    claimedAfter(fence) {
      let lo = -1;
      for (let hi = value.length - 1; lo < hi;) {
        const mid = Math.ceil((lo + hi + 1) / 2);
        if (value[mid] < fence) lo = mid;
        else hi = mid - 1;
      }
      return lo < 0 ? -Infinity : at[lo];
    },
  };
}

// ---- drain ----

async function leftovers(): Promise<Record<string, number>> {
  const k = keysFor(prefix);
  const [l1e, l1l, l1d, l2e, l2l, l2d, delayed, running] = (await queue
    .pipeline()
    .llen(k.queue(1, 'execute'))
    .hlen(k.queue(1, 'last'))
    .llen(k.queue(1, 'discard'))
    .llen(k.queue(2, 'execute'))
    .hlen(k.queue(2, 'last'))
    .llen(k.queue(2, 'discard'))
    .zcard(k.delayed)
    .hlen(k.running)
    .exec())!.map(([, n]) => Number(n));
  let held = 0;
  for (const name of await queue.keys(`${k.tag}:worker:*`)) if (!name.endsWith(':inbox')) held += await queue.hlen(name);
  return { 'L1:execute': l1e, 'L1:last': l1l, 'L1:discard': l1d, 'L2:execute': l2e, 'L2:last': l2l, 'L2:discard': l2d, delayed, held, running };
}

const isDrained = (left: Record<string, number>): boolean => Object.entries(left).every(([name, n]) => name === 'running' || n === 0);

// ---- reading the records ----

async function readRuns(): Promise<Run[]> {
  const byFence = new Map<number, Run>();
  for (const line of await records.lrange(recordKey, 0, -1)) {
    const entry = JSON.parse(line) as Run & { phase: 'start' | 'end' };
    const run = byFence.get(entry.fence) ?? { ...entry, end: null, aborted: null };
    if (entry.phase === 'end') Object.assign(run, { end: entry.end, aborted: entry.aborted });
    byFence.set(entry.fence, run);
  }
  return [...byFence.values()];
}

// ---- analysis ----

const freezeMs = (f: Freeze): number => f.contAt - f.stopAt;
const killedAt = (pid: number): number | undefined => kills.find((k) => k.pid === pid)?.killAt;
/** Where a run ended: its 'end' entry, else the death of its process (a SIGKILL), else never. */
const endOf = (run: Run): number => run.end ?? killedAt(run.pid) ?? Infinity;

/**
 * A freeze of the run's process, while the run was on, that outlived the process's lease: longer
 * than the lease, or followed by the process logging lease_lost (it outlived what was left of
 * the lease; it cannot, for a freeze shorter than the lease: renewals hold it for a lease and a tenth).
 */
function frozenPastLease(run: Run, pastLease: ReadonlySet<Freeze>): Freeze | undefined {
  return freezes.find((f) => f.pid === run.pid && pastLease.has(f) && run.start <= f.contAt && endOf(run) >= f.stopAt);
}

function byKey(runs: Run[]): Map<string, Run[]> {
  const map = new Map<string, Run[]>();
  for (const run of runs) {
    if (run.key === null) continue;
    const name = `L${run.level}:${run.key}`;
    map.set(name, [...(map.get(name) ?? []), run]);
  }
  for (const list of map.values()) list.sort((a, b) => a.start - b.start);
  return map;
}

function lostMessages(sent: Sent[], runs: Run[]): string[] {
  const completed = runs.filter((r) => r.end !== null);
  const seqsDone = new Set(completed.map((r) => r.seq));
  const versionsDone = new Set(completed.map((r) => `L${r.level}:${r.key}#${r.version}`));
  const lost = sent.filter((s) => s.policy === 'execute' && s.status === 201 && !seqsDone.has(s.seq)).map((s) => `execute seq ${s.seq} (L${s.level})`);
  const newest = new Map<string, number>();
  for (const s of sent)
    if (s.policy === 'last' && s.status === 201) newest.set(`L${s.level}:${s.key}`, Math.max(newest.get(`L${s.level}:${s.key}`) ?? 0, s.version!));
  for (const [key, version] of newest) if (!versionsDone.has(`${key}#${version}`)) lost.push(`${key} newest accepted version ${version} never completed`);
  return lost;
}

interface LateStart {
  run: Run;
  newer: Sent;
  /** The run was claimed after this time (sampled run counter). */
  claimedAfter: number;
}

/**
 * Runs that started after a newer message of their key had been accepted. A run starts when it
 * is claimed (the deployment's decision; its handler may begin later if its process stalls
 * right after the claim, within its lease): a violation is proven when the claim's lower bound
 * is after the newer message's answer, an upper bound of its acceptance. `handlerOnly` lists
 * the runs whose handler began after that answer though the claim may have come before.
 */
function lateStarts(sent: Sent[], runs: Run[], claimedAfter: (fence: number) => number): { late: LateStart[]; handlerOnly: LateStart[] } {
  const accepted = new Map<string, Sent[]>();
  for (const s of sent) if (s.policy === 'last' && s.status === 201) accepted.set(`L${s.level}:${s.key}`, [...(accepted.get(`L${s.level}:${s.key}`) ?? []), s]);
  const late: LateStart[] = [];
  const handlerOnly: LateStart[] = [];
  for (const run of runs) {
    if (run.key === null) continue;
    const newer = (accepted.get(`L${run.level}:${run.key}`) ?? []).find((s) => s.version! > run.version! && s.answeredAt < run.start);
    if (!newer) continue;
    const found = { run, newer, claimedAfter: claimedAfter(run.fence) };
    (found.claimedAfter > newer.answeredAt ? late : handlerOnly).push(found);
  }
  return { late, handlerOnly };
}

interface Overlap {
  key: string;
  a: Run;
  b: Run;
  frozen: Freeze | undefined;
}

function overlaps(keyed: Map<string, Run[]>, pastLease: ReadonlySet<Freeze>): Overlap[] {
  const found: Overlap[] = [];
  for (const [key, list] of keyed) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length && list[j].start < endOf(list[i]); j++) {
        found.push({ key, a: list[i], b: list[j], frozen: frozenPastLease(list[i], pastLease) ?? frozenPastLease(list[j], pastLease) });
      }
    }
  }
  return found;
}

/** Pairs of runs of one key that did not overlap where the later one has the smaller fence. */
function fenceInversions(keyed: Map<string, Run[]>): Array<{ key: string; earlier: Run; later: Run }> {
  const found: Array<{ key: string; earlier: Run; later: Run }> = [];
  for (const [key, list] of keyed) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        if (list[j].start >= endOf(list[i]) && list[j].fence <= list[i].fence) found.push({ key, earlier: list[i], later: list[j] });
      }
    }
  }
  return found;
}

interface WorkerEvent {
  pid: number;
  event: string;
  at: number;
  line: Record<string, unknown>;
}

function workerEvents(): WorkerEvent[] {
  return everyWorker.flatMap((w) =>
    logLines(w.output())
      .filter((l) => l.level !== 'info')
      .map((l) => ({ pid: w.child.pid!, event: String(l.event), at: Date.parse(String(l.time)), line: l })),
  );
}

/** For each freeze: when (after SIGCONT) its process logged lease_lost, if it did. */
function leaseLossAfter(freeze: Freeze, events: WorkerEvent[]): number | undefined {
  const next = freezes.filter((f) => f.pid === freeze.pid && f.stopAt > freeze.stopAt).map((f) => f.stopAt);
  const until = Math.min(freeze.contAt + 1000, ...next);
  const lost = events.find((e) => e.pid === freeze.pid && e.event === 'lease_lost' && e.at >= freeze.stopAt && e.at <= until);
  return lost && lost.at - freeze.contAt;
}

// ---- reporting ----

let t0 = 0;
const t = (ms: number | null): string => (ms === null ? '—' : ms === Infinity ? '∞' : `${((ms - t0) / 1000).toFixed(3)}s`);
const describeRun = (r: Run): string =>
  `${r.id} v${r.version ?? '-'} attempt ${r.attempt} fence ${r.fence} pid ${r.pid} [${t(r.start)} – ${t(r.end ?? killedAt(r.pid) ?? null)}${r.end === null ? ' (no end)' : ''}] aborted=${r.aborted}`;

function chaosAround(from: number, to: number): string {
  const lines = [
    ...freezes
      .filter((f) => f.contAt >= from - 6000 && f.stopAt <= to + 1000)
      .map((f) => `SIGSTOP pid ${f.pid} ${t(f.stopAt)} → SIGCONT ${t(f.contAt)} (${freezeMs(f)} ms, ${f.kind})`),
    ...kills.filter((k) => k.killAt >= from - 6000 && k.killAt <= to + 1000).map((k) => `SIGKILL pid ${k.pid} at ${t(k.killAt)}`),
  ];
  return lines.length ? lines.join('; ') : 'no chaos action near';
}

function report(line: string): void {
  process.stdout.write(`[chaos] ${line}\n`);
}

interface Figures {
  sent: Sent[];
  runs: Run[];
  stats: Record<string, string>;
  events: WorkerEvent[];
  balance: Array<{ level: Level; ended: number; queued: number; replaced: number }>;
  allowed: Overlap[];
  lost: string[];
  late: LateStart[];
  handlerOnly: LateStart[];
  forbidden: Overlap[];
  inversions: unknown[];
  longLags: Array<number | undefined>;
  shortFreezes: Freeze[];
  shortLosses: Freeze[];
  pastLease: ReadonlySet<Freeze>;
}

function summary(chaosSeconds: number, drainSeconds: number, f: Figures): string {
  const accepted = f.sent.filter((s) => s.status === 201);
  const completed = f.runs.filter((r) => r.end !== null).length;
  const runsPerId = new Map<string, number>();
  for (const r of f.runs) runsPerId.set(r.id, (runsPerId.get(r.id) ?? 0) + 1);
  const duplicates = [...runsPerId.values()].filter((n) => n > 1).length;
  const afterShort = f.allowed.filter((o) => freezeMs(o.frozen!) <= LEASE_MS).length;
  return (
    `${chaosSeconds.toFixed(1)} s of chaos, drained in ${drainSeconds.toFixed(1)} s; ` +
    `messages sent ${f.sent.length}, accepted ${accepted.length} (replaced ${accepted.filter((s) => s.state === 'replaced').length}), ` +
    `refused ${f.sent.filter((s) => s.status === 409).length}, failed ${f.sent.filter((s) => s.status !== 201 && s.status !== 409).length}; ` +
    `runs ${f.runs.length} (completed ${completed}, cut by SIGKILL ${f.runs.length - completed}), ids run more than once ${duplicates}; ` +
    `SIGSTOP short ${f.shortFreezes.length} / long ${f.longLags.length}, SIGKILL ${kills.length}; ` +
    `overlaps allowed (frozen past lease) ${f.allowed.length}${afterShort ? ` (${afterShort} after a freeze shorter than the lease)` : ''}; ` +
    `violations: lost ${f.lost.length}, late start ${f.late.length}, overlap ${f.forbidden.length}, fence ${f.inversions.length}; ` +
    `handlers that began after a newer message was accepted, their run claimed before it (a stall between claim and handler) ${f.handlerOnly.length}; ` +
    `counters ${f.balance.map((b) => `L${b.level} queued ${b.queued} replaced ${b.replaced} done+superseded+dead ${b.ended}`).join(', ')} ` +
    JSON.stringify({ L1: counters(f.stats, 1), L2: counters(f.stats, 2) })
  );
}

/** The freeze a run sat through and outlived, finishing in a process whose lease was gone. */
const wokenPastLease = (r: Run, pastLease: ReadonlySet<Freeze>): Freeze | undefined =>
  r.end === null ? undefined : freezes.find((f) => pastLease.has(f) && f.pid === r.pid && r.start <= f.contAt && r.end! > f.contAt);

function workerSummary(f: Figures): string {
  const counts: Record<string, number> = {};
  for (const e of f.events) counts[e.event] = (counts[e.event] ?? 0) + 1;
  const handedBack = f.events.filter((e) => e.event === 'jobs_recovered').reduce((n, e) => n + Number(e.line.jobs ?? 0), 0);
  const woken = f.runs.filter((r) => wokenPastLease(r, f.pastLease));
  const afterWaking = woken.map((r) => r.end! - wokenPastLease(r, f.pastLease)!.contAt).sort((x, y) => x - y);
  return (
    `worker log events (warn and above) ${JSON.stringify(counts)}; jobs handed back by recovery ${handedBack}; ` +
    `lease_lost after a long freeze: ${f.longLags.filter((l) => l !== undefined).length}/${f.longLags.length}, ms after SIGCONT ${JSON.stringify(f.longLags)}; ` +
    `short freezes (ms) ${JSON.stringify(f.shortFreezes.map(freezeMs))}, of which lost the lease: ${f.shortLosses.map((s) => `${freezeMs(s)} ms`).join(', ') || 'none'}; ` +
    `runs finished by a woken process past its lease ${woken.length} (median ${afterWaking[Math.floor(afterWaking.length / 2)] ?? '-'} ms after SIGCONT; ` +
    `signal seen aborted by ${woken.filter((r) => r.aborted).length})`
  );
}

function redisFaultSummary(sent: Sent[]): string {
  const cuts = redisFaults.filter((f) => f.kind === 'cut');
  const byRole = ROLES.map((role) => {
    const of = cuts.filter((f) => f.role === role);
    return `${role} ${of.length} (${of.reduce((n, f) => n + (f.connections ?? 0), 0)} connections)`;
  });
  const pauses = redisFaults.filter((f) => f.kind === 'pause');
  return (
    `Redis faults: connections dropped ${byRole.join(', ')}; client pauses ${pauses.length} (${pauses.reduce((n, f) => n + (f.ms ?? 0), 0)} ms in all); ` +
    `calls sent again with their id ${sent.filter((s) => s.retried > 0).length} (${sent.reduce((n, s) => n + s.retried, 0)} repeats), ` +
    `answered duplicate ${sent.filter((s) => s.state === 'duplicate').length}`
  );
}

function chaosLog(): string {
  const actions = [
    ...freezes.map((f) => ({ at: f.stopAt, text: `${t(f.stopAt)} SIGSTOP pid ${f.pid} for ${freezeMs(f)} ms` })),
    ...kills.map((k) => ({ at: k.killAt, text: `${t(k.killAt)} SIGKILL pid ${k.pid}` })),
  ];
  return actions
    .sort((a, b) => a.at - b.at)
    .map((a) => a.text)
    .join('; ');
}

function counters(stats: Record<string, string>, level: Level): Record<string, number> {
  const of = (what: string): number => Number(stats[`L${level}:${what}`] ?? 0);
  return Object.fromEntries(['queued', 'replaced', 'refused', 'done', 'superseded', 'dead', 'recovered', 'retried', 'dropped'].map((w) => [w, of(w)]));
}

test('a minute of SIGSTOP and SIGKILL under last/execute traffic: nothing lost, no older message started late, overlaps only from a frozen process, fences grow, counters balance', async () => {
  gateway = await inProcessGateway(APP, queueRedis.url, prefix);
  const address = gateway.address;
  await Promise.all(Array.from({ length: WORKERS }, () => addWorker()));

  const sampler = sampleRunCounter();
  t0 = Date.now();
  const until = t0 + CHAOS_MS;
  const [sent] = await Promise.all([traffic(address, until), chaos(until)]);
  const chaosSeconds = (Date.now() - t0) / 1000;
  for (const w of live.values()) w.kill('SIGCONT'); // nothing should be stopped now; cheap insurance

  const drainStart = Date.now();
  let left = await leftovers();
  const drained = await waitFor(async () => isDrained((left = await leftovers())), DRAIN_MS, 250);
  const drainSeconds = (Date.now() - drainStart) / 1000;
  await sleep(1000); // runs abandoned by a woken process finish within 400 ms of waking
  await sampler.stop();
  expect({ drained, left }).toEqual({ drained: true, left: expect.objectContaining({ running: 0 }) });

  const runs = await readRuns();
  const stats = await queue.hgetall(keysFor(prefix).stats);
  const events = workerEvents();
  const lossLag = new Map(freezes.map((f) => [f, leaseLossAfter(f, events)]));
  const pastLease = new Set(freezes.filter((f) => freezeMs(f) > LEASE_MS || lossLag.get(f) !== undefined));

  // (a) nothing accepted is lost
  const lost = lostMessages(sent, runs);
  // (b) no run started after a newer message of its key was accepted
  const { late, handlerOnly } = lateStarts(sent, runs, sampler.claimedAfter);
  // (c) two runs of one key at once only while one of them sat in a process frozen past its lease
  const keyed = byKey(runs);
  const overlapping = overlaps(keyed, pastLease);
  const allowed = overlapping.filter((o) => o.frozen);
  const forbidden = overlapping.filter((o) => !o.frozen);
  // (d) of two runs of a key one after the other, the later has the larger fence
  const inversions = fenceInversions(keyed);
  // (e) every queued message ends once: done, superseded or dead; the counters match the answers
  const answered = (level: Level, state: string): number => sent.filter((s) => s.status === 201 && s.level === level && s.state === state).length;
  const balance = ([1, 2] as const).map((level) => {
    const c = counters(stats, level);
    return {
      level,
      ended: c.done + c.superseded + c.dead,
      queued: c.queued,
      replaced: c.replaced,
      answeredQueued: answered(level, 'queued'),
      answeredReplaced: answered(level, 'replaced'),
      // A repeat that found its job known: the first call was accepted (queued or replaced), its answer lost.
      answeredDuplicate: answered(level, 'duplicate'),
    };
  });
  // (f) a freeze longer than the lease is noticed at once on waking; one well inside it changes nothing
  const longFreezes = freezes.filter((f) => freezeMs(f) > LEASE_MS);
  const shortFreezes = freezes.filter((f) => freezeMs(f) <= LEASE_MS);
  const longLags = longFreezes.map((f) => lossLag.get(f));
  const shortLosses = shortFreezes.filter((f) => lossLag.get(f) !== undefined);

  const figures = {
    sent,
    runs,
    stats,
    events,
    balance,
    allowed,
    lost,
    late,
    handlerOnly,
    forbidden,
    inversions,
    longLags,
    shortFreezes,
    shortLosses,
    pastLease,
  };
  report(summary(chaosSeconds, drainSeconds, figures));
  report(workerSummary(figures));
  report(`actions ${chaosLog()}`);
  report(redisFaultSummary(sent));

  const explain = {
    lost: lost.slice(0, 20),
    late: late
      .slice(0, 20)
      .map(
        (l) =>
          `L${l.run.level}:${l.run.key}: ${describeRun(l.run)} started after v${l.newer.version} was accepted (answer at ${t(l.newer.answeredAt)}); claimed after ${t(l.claimedAfter)}; ${chaosAround(l.newer.answeredAt, l.run.start)}`,
      ),
    overlaps: forbidden
      .slice(0, 20)
      .map((o) => `${o.key}: ${describeRun(o.a)} overlaps ${describeRun(o.b)}; ${chaosAround(o.a.start, Math.min(endOf(o.a), endOf(o.b)))}`),
    fences: inversions.slice(0, 20).map((f) => `${f.key}: ${describeRun(f.earlier)} then ${describeRun(f.later)}`),
  };
  expect(explain).toEqual({ lost: [], late: [], overlaps: [], fences: [] });
  expect(sent.filter((s) => s.status !== 201 && s.status !== 409)).toEqual([]);
  expect(sent.filter((s) => s.status === 409).every((s) => s.level === 2)).toBe(true);
  // Each accepted message is counted once, whether its answer came or only its repeat's `duplicate`.
  for (const b of balance)
    expect({ level: b.level, ended: b.ended, accepted: b.queued + b.replaced }).toEqual({
      level: b.level,
      ended: b.queued,
      accepted: b.answeredQueued + b.answeredReplaced + b.answeredDuplicate,
    });
  for (const b of balance) expect(b.queued).toBeGreaterThanOrEqual(b.answeredQueued);
  // A woken process learns at once that its lease is gone; a freeze shorter than the lease never
  // costs it (renewals hold it for a lease and a tenth; 100 ms allowed for the signals' delivery).
  expect(longLags.every((lag) => lag !== undefined && lag < 1000)).toBe(true);
  // A Redis client pause just before or during the freeze held the renewals back too: the two
  // add up, and may outlast the lease (that is not a freeze shorter than the lease).
  const pausedNear = (f: Freeze): boolean => redisFaults.some((r) => r.kind === 'pause' && r.at < f.contAt && r.at + (r.ms ?? 0) > f.stopAt - LEASE_MS);
  expect(shortLosses.filter((f) => freezeMs(f) < LEASE_MS - 100 && !pausedNear(f)).map((f) => `pid ${f.pid} ${t(f.stopAt)} – ${t(f.contAt)}`)).toEqual([]);
  // The chaos really happened.
  expect({ short: shortFreezes.length > 0, long: longFreezes.length > 0, kills: kills.length > 0 }).toEqual({ short: true, long: true, kills: true });
  expect({
    cuts: redisFaults.some((f) => f.kind === 'cut' && (f.connections ?? 0) > 0),
    pauses: redisFaults.some((f) => f.kind === 'pause'),
  }).toEqual({ cuts: true, pauses: true });
}, 200_000);
