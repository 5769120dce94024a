// The only code that talks to Redis about queues. Each hot-path method is one script call
// (atomic); the operator views read with pipelines (`workers()` one round trip per live
// worker); the scripts in ./scripts document their KEYS and ARGV.
import type { RedisClient } from './redis';
import type { CallRequest, Level } from '../call/params';
import { LEVEL2_OFF_ABOVE, LEVEL2_ON_BELOW } from '../policy';
import { encodeJob, newJobId, type Job } from './job';
import { keyNamed, keysFor, type Keys } from './keys';
import { REPLY_CODES, replyOf } from './replies';
import { defineScripts, keyNamesOf, runScript, runScriptAndWait, type ScriptName } from './scripts';

export type EnqueueOutcome = 'queued' | 'replaced' | 'refused' | 'dropped' | 'duplicate';

export interface AdmissionLimits {
  capacity: number;
  discardThreshold: number;
  /** Durable enqueue: the number of replicas that must hold the job before it counts as accepted. */
  replicasAck?: number;
  replicasTimeoutMs?: number;
}

export interface SelectionOptions {
  weights: readonly [number, number];
  strict: boolean;
  capacity: number;
}

export interface Ack {
  job: Job;
  outcome: 'done' | 'dropped';
  /** The status the route answered (kept with a finished job for lookup). */
  status: number;
}

/** A run as a claim or a hand-off delivers it: its token and the stored payload (not yet decoded). */
export interface DeliveredRun {
  token: number;
  payload: string;
  /** The partition it came from, where it is settled (0 in a deployment of one). */
  partition: number;
}

/** What settles a failed run: a retry after a delay, or the dead list with its last status and error. */
export type FailurePlan = { retryDelayMs: number } | { status: number | null; error: string };
export type FailOutcome = 'lost' | 'gone' | 'retry' | 'dead' | 'superseded';

export interface QueueStats {
  queues: Record<string, number>;
  backlog: { L1: number; L2: number };
  level2Active: boolean;
  /** Levels paused by an operator (accepting calls, not claimed). */
  paused: Record<Level, boolean>;
  inFlight: number;
  workers: number;
  /** Workers blocked for work right now (fresh idle registrations): new jobs go straight to them. */
  idle: number;
  delayed: number;
  dead: number;
  counters: Record<string, number>;
}

export interface QueueGauges {
  backlog: Record<Level, Record<'execute' | 'last' | 'discard', number>>;
  /** Age of the oldest waiting message per level, null when none waits. */
  oldestAgeSeconds: Record<Level, number | null>;
  level2Active: boolean;
  dead: number;
  liveWorkers: number;
  retriesWaiting: number;
}

/**
 * How long an idle registration (made by an empty claim) lasts unless renewed. A worker must
 * block for less than this between claims; a worker killed while idle is a candidate for
 * hand-off at most this long after its death.
 */
export const IDLE_REGISTRATION_MS = 1500;

/** What a claim delivered, and which levels still have work waiting in its partition (bit 1: level 1, bit 2: level 2). */
export interface Claimed {
  runs: DeliveredRun[];
  workLeft: number;
}

/**
 * One partition of a deployment's queues: every script call and read of it. A deployment of
 * one partition is this store alone, under the tag `{prefix}`; one of several has partition p
 * under `{prefix:p}` (queues.ts holds the deployment as a whole).
 */
export class Store {
  readonly keys: Keys;
  /** One partition: an enqueue hands its message to an idle worker itself (see enqueue.lua). */
  private readonly handOff: boolean;
  /** The keys of the scripts that take no worker's keys, built once (the enqueue script runs on every async call). */
  private readonly partitionKeys = new Map<ScriptName, readonly string[]>();

  constructor(
    readonly redis: RedisClient,
    prefix: string,
    readonly partition?: number,
  ) {
    this.keys = keysFor(prefix, partition);
    this.handOff = partition === undefined;
    defineScripts(redis);
  }

  /** A script's keys in this partition, in the order its `-- KEYS:` line names them; `workerId` for a worker's own. */
  private keysOf(script: ScriptName, workerId?: string): readonly string[] {
    if (workerId !== undefined) return keyNamesOf(script).map((name) => keyNamed(this.keys, name, workerId));
    let keys = this.partitionKeys.get(script);
    if (!keys) this.partitionKeys.set(script, (keys = keyNamesOf(script).map((name) => keyNamed(this.keys, name))));
    return keys;
  }

  /**
   * `wakeIdle`: queued while an idle worker waits on the deployment's wake keys (several
   * partitions only). `replicas`: with limits.replicasAck, how many replicas confirmed it.
   */
  async enqueue(call: CallRequest, limits: AdmissionLimits): Promise<{ id: string; outcome: EnqueueOutcome; wakeIdle: boolean; replicas?: number }> {
    const q = call.queue!;
    // A caller's own id (queue_detail.id) makes a retried call safe: a known id queues nothing.
    const id = q.id ?? newJobId();
    const keys = this.keysOf('enqueue');
    const args = [
      q.level,
      q.policy,
      q.id === undefined ? '' : '1',
      id,
      encodeJob(id, call),
      limits.capacity,
      limits.discardThreshold,
      this.keys.tag,
      LEVEL2_OFF_ABOVE,
      LEVEL2_ON_BELOW,
      this.handOff ? 'handoff' : 'report',
      q.delayMs ?? 0,
    ];
    if (limits.replicasAck) {
      const { result, acknowledged } = await runScriptAndWait<number>(this.redis, 'enqueue', keys, args, limits.replicasAck, limits.replicasTimeoutMs ?? 100);
      return { id, ...enqueueOutcome(result), replicas: acknowledged };
    }
    return { id, ...enqueueOutcome(await runScript<number>(this.redis, 'enqueue', keys, args)) };
  }

  /** Enters a new worker id in the worker set with a lease; false when the id is already known. */
  async register(workerId: string, leaseMs: number): Promise<boolean> {
    return (await this.lease(workerId, leaseMs, 'register')) > 0;
  }

  /** Renews the worker's lease on Redis's clock; false when it had already run out (the worker is dead). */
  async renewLease(workerId: string, leaseMs: number): Promise<boolean> {
    return (await this.lease(workerId, leaseMs, 'renew')) > 0;
  }

  private async lease(workerId: string, leaseMs: number, mode: 'register' | 'renew'): Promise<number> {
    const left = await runScript<number>(this.redis, 'renewLease', this.keysOf('renewLease', workerId), [workerId, leaseMs, mode]);
    return left === REPLY_CODES.renewLease.lost ? 0 : left;
  }

  /**
   * Takes the jobs handed to this worker, then claims up to n in all (at most level2Room of
   * level 2), each as a new run with its token, and renews the worker's lease. With nothing to
   * take the worker is registered idle for idleRegistrationMs: it must then block in
   * waitForWork (for less than that), where the next job may be handed to it.
   * 'lost': the worker's lease had run out; nothing was claimed.
   */
  async claim(
    workerId: string,
    n: number,
    level2Room: number,
    selection: SelectionOptions,
    leaseMs: number,
    idleRegistrationMs = IDLE_REGISTRATION_MS,
    takesLevel1 = true,
  ): Promise<Claimed | 'lost'> {
    const reply = await runScript<Array<number | string> | number>(this.redis, 'claimJobs', this.keysOf('claimJobs', workerId), [
      workerId,
      leaseMs,
      n,
      level2Room,
      selection.weights[0],
      selection.weights[1],
      selection.strict ? '1' : '0',
      selection.capacity,
      idleRegistrationMs,
      LEVEL2_ON_BELOW,
      takesLevel1 ? '1' : '0',
    ]);
    if (typeof reply === 'number') return replyOf('claimJobs', reply);
    const runs: DeliveredRun[] = [];
    for (let i = 1; i < reply.length; i += 2) runs.push({ token: Number(reply[i]), payload: String(reply[i + 1]), partition: this.partition ?? 0 });
    return { runs, workLeft: Number(reply[0]) };
  }

  /**
   * Acknowledges finished runs, keeping them for lookup `keepMs` (0: not at all; pruneDone
   * forgets them); 'lost' (nothing counted) when the worker's lease had run out.
   */
  async finish(workerId: string, acks: readonly Ack[], keepMs = 0): Promise<number | 'lost'> {
    const args: Array<string | number> = [workerId, keepMs];
    for (const { job, outcome, status } of acks) args.push(job.token, job.id, job.level, job.policy === 'last' ? (job.key ?? '') : '', outcome, status);
    const n = await runScript<number>(this.redis, 'finishJobs', this.keysOf('finishJobs', workerId), args);
    return n === REPLY_CODES.finishJobs.lost ? 'lost' : n;
  }

  /** Settles a failed run: 'gone' when it was no longer this worker's, 'lost' when the lease had run out. */
  async fail(workerId: string, token: number, plan: FailurePlan, deadMax: number): Promise<FailOutcome> {
    const retry = 'retryDelayMs' in plan;
    const code = await runScript<number>(this.redis, 'failJob', this.keysOf('failJob', workerId), [
      workerId,
      token,
      retry ? 'retry' : 'dead',
      retry ? plan.retryDelayMs : 0,
      retry || plan.status === null ? '' : plan.status,
      retry ? '' : plan.error,
      deadMax,
    ]);
    return replyOf('failJob', code);
  }

  /**
   * Forgets kept finished jobs older than keepMs, or all of them when keepMs is 0, and the
   * oldest beyond keepMax; at most `batch` per call. Returns how many were forgotten.
   */
  pruneDone(keepMs: number, keepMax: number, batch = 1000): Promise<number> {
    return runScript<number>(this.redis, 'pruneDone', this.keysOf('pruneDone'), [keepMs, keepMax, batch]);
  }

  /** Moves due retries back into their queues (Redis's clock decides what is due). */
  promoteDue(deadMax: number, max = 200): Promise<number> {
    return runScript<number>(this.redis, 'promoteDue', this.keysOf('promoteDue'), [max, deadMax]);
  }

  /**
   * Hands a worker's runs back to their queues: all of a dead worker's (`expired`, attempt + 1;
   * refused while its lease holds), all of a stopping worker's (`shutdown`), or those recorded
   * for a live worker that it does not hold (`orphans`: a claim whose reply was lost), keeping
   * the run tokens in `held`.
   */
  requeueWorker(workerId: string, mode: 'expired' | 'shutdown' | 'orphans', attempts: number, deadMax: number, held: readonly number[] = []): Promise<number> {
    return runScript<number>(this.redis, 'requeueWorker', this.keysOf('requeueWorker', workerId), [workerId, mode, attempts, deadMax, ...held]);
  }

  /** Workers whose lease ran out, on Redis's clock. */
  expiredWorkers(max = 20): Promise<string[]> {
    return runScript<string[]>(this.redis, 'expiredWorkers', this.keysOf('expiredWorkers'), [max]);
  }

  /**
   * Blocks until a job is handed to this worker (returned: it is already the worker's run, as
   * if claimed) or a wake marker of the given levels appears (null: claim next), or the timeout.
   */
  async waitForWork(blocking: RedisClient, workerId: string, levels: readonly Level[], timeoutSeconds: number): Promise<DeliveredRun | null> {
    const inbox = this.keys.inbox(workerId);
    const woken = await blocking.blpop(inbox, ...levels.map((l) => this.keys.wake(l)), timeoutSeconds);
    if (woken === null || woken[0] !== inbox) return null;
    const colon = woken[1].indexOf(':');
    return { token: Number(woken[1].slice(0, colon)), payload: woken[1].slice(colon + 1), partition: 0 };
  }

  async stats(): Promise<QueueStats> {
    const k = this.keys;
    const names = ['L1:execute', 'L1:last', 'L1:discard', 'L2:execute', 'L2:last', 'L2:discard'] as const;
    const pipeline = this.redis.pipeline();
    for (const name of names) {
      const [level, policy] = name.split(':') as [string, 'execute' | 'last' | 'discard'];
      const key = k.queue(Number(level.slice(1)) as Level, policy);
      if (policy === 'last') pipeline.hlen(key);
      else pipeline.llen(key);
    }
    pipeline.get(k.l2Active).llen(k.dead).hgetall(k.stats).zrange(k.workers, 0, -1, 'WITHSCORES').zcard(k.delayed).time().hmget(k.paused, 'L1', 'L2');
    const results = (await pipeline.exec())!.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    const queues: Record<string, number> = {};
    names.forEach((name, i) => (queues[name] = Number(results[i])));
    // Leases and idle registrations are scored in Redis time, so count against Redis's clock, not ours.
    const [seconds, micros] = results[11] as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const scored = results[9] as string[];
    const workers: string[] = [];
    for (let i = 0; i < scored.length; i += 2) if (Number(scored[i + 1]) >= now) workers.push(scored[i]);
    const p = this.redis.pipeline().zcount(k.idle(1), now, '+inf');
    for (const w of workers) p.hlen(k.workerJobs(w));
    const [[idleErr, idle], ...held] = (await p.exec())!;
    if (idleErr) throw idleErr;
    let inFlight = 0;
    for (const [err, value] of held) if (!err) inFlight += Number(value);
    const counters: Record<string, number> = {};
    for (const [field, value] of Object.entries(results[8] as Record<string, string>)) counters[field] = Number(value);
    return {
      queues,
      backlog: {
        L1: queues['L1:execute'] + queues['L1:last'] + queues['L1:discard'],
        L2: queues['L2:execute'] + queues['L2:last'] + queues['L2:discard'],
      },
      level2Active: results[6] !== '0',
      paused: { 1: (results[12] as Array<string | null>)[0] === '1', 2: (results[12] as Array<string | null>)[1] === '1' },
      inFlight,
      workers: workers.length,
      idle: Number(idle),
      delayed: Number(results[10]),
      dead: Number(results[7]),
      counters,
    };
  }

  /** The gauges of /metrics, read in one round trip. */
  async gauges(): Promise<QueueGauges> {
    const r = await runScript<number[]>(this.redis, 'queueGauges', this.keysOf('queueGauges'), []);
    const age = (ms: number): number | null => (ms < 0 ? null : ms / 1000);
    return {
      backlog: { 1: { execute: r[0], last: r[1], discard: r[2] }, 2: { execute: r[3], last: r[4], discard: r[5] } },
      oldestAgeSeconds: { 1: age(r[6]), 2: age(r[7]) },
      level2Active: r[8] === 1,
      dead: r[9],
      liveWorkers: r[10],
      retriesWaiting: r[11],
    };
  }

  listDead(limit: number): Promise<string[]> {
    return this.redis.lrange(this.keys.dead, 0, limit - 1);
  }

  /** Every dead job back in line (oldest first); returns how many were requeued. */
  requeueAllDead(): Promise<number> {
    return runScript<number>(this.redis, 'requeueDead', this.keysOf('requeueDead'), ['all', '']);
  }

  /** One dead job back in line: 'requeued', 'unknown' (no dead job has that id) or 'superseded' (its key has a newer message). */
  async requeueDead(id: string): Promise<'requeued' | 'unknown' | 'superseded'> {
    return replyOf('requeueDead', await runScript<number>(this.redis, 'requeueDead', this.keysOf('requeueDead'), ['one', id]));
  }

  /** Live workers, their lease and what each runs now (for the dashboard). */
  async workers(): Promise<WorkerView[]> {
    const k = this.keys;
    // One pipeline, so TIME is read on this partition's own node: alone, a keyless command goes to
    // any node of a Cluster, a stopped one included, and the partition would seem not to answer.
    const [[scoredErr, scoredReply], [timeErr, timeReply]] = (await this.redis.pipeline().zrange(k.workers, 0, -1, 'WITHSCORES').time().exec())!;
    if (scoredErr || timeErr) throw scoredErr ?? timeErr;
    const scored = scoredReply as string[];
    const [seconds, micros] = timeReply as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const views: WorkerView[] = [];
    for (let i = 0; i < scored.length; i += 2) {
      const id = scored[i];
      const leaseLeftMs = Number(scored[i + 1]) - now;
      if (leaseLeftMs < 0) continue;
      const held = await this.redis.hgetall(k.workerJobs(id));
      const calls = Object.values(held).map((payload) => JSON.parse(payload) as { id: string; url: string; method: string; level: Level; attempt?: number });
      const where = calls.length > 0 ? await this.redis.hmget(k.jobs, ...calls.map((c) => c.id)) : [];
      const running = calls.map((c, j) => {
        const since = Number(/^r(\d+):/.exec(where[j] ?? '')?.[1] ?? now);
        return { id: c.id, url: c.url, method: c.method, level: c.level, attempt: c.attempt ?? 1, runningSeconds: (now - since) / 1000 };
      });
      views.push({ id, leaseLeftMs, running });
    }
    return views;
  }

  /** Empties the dead list in one step; returns how many entries it held. */
  purgeDead(): Promise<number> {
    return runScript<number>(this.redis, 'purgeDead', this.keysOf('purgeDead'), []);
  }

  /** Where a job is and what it holds; null when this partition does not know it. */
  async lookup(id: string, scanMax = 100_000): Promise<RawLookup | null> {
    const k = this.keys;
    const reply = await runScript<Array<string | number>>(this.redis, 'lookupJob', this.keysOf('lookupJob'), [id, k.tag, scanMax]);
    if (reply.length === 0) return null;
    return { where: String(reply[0]), found: String(reply[1]), position: Number(reply[2]), leaseUntil: Number(reply[3]), now: Number(reply[4]) };
  }

  /** Removes a waiting or retrying job. */
  async deleteJob(id: string): Promise<DeleteOutcome> {
    const [code] = await runScript<[number, string]>(this.redis, 'deleteJob', this.keysOf('deleteJob'), [id]);
    const reply = replyOf('deleteJob', code);
    // An index entry that named the wrong place was dropped: to the operator the job is unknown.
    return reply === 'notWhereIndexed' ? 'unknown' : reply;
  }

  /** Pauses (no worker claims it; calls are still accepted) or resumes a level; true when that changed its state. */
  async setPaused(level: Level, paused: boolean): Promise<boolean> {
    return (await runScript<number>(this.redis, 'pauseLevel', this.keysOf('pauseLevel'), [level, paused ? 'pause' : 'resume'])) === 1;
  }

  async pausedLevels(): Promise<Record<Level, boolean>> {
    const [l1, l2] = await this.redis.hmget(this.keys.paused, 'L1', 'L2');
    return { 1: l1 === '1', 2: l2 === '1' };
  }

  /** The next `limit` messages of a queue, next first (for `last`: the keys in line, with their payloads). */
  async peek(level: Level, policy: 'execute' | 'last' | 'discard', limit: number): Promise<string[]> {
    const k = this.keys;
    if (policy !== 'last') return (await this.redis.lrange(k.queue(level, policy), -limit, -1)).reverse();
    const keys = (await this.redis.lrange(k.order(level), -limit, -1)).reverse();
    if (keys.length === 0) return [];
    return (await this.redis.hmget(k.queue(level, 'last'), ...keys)).filter((p): p is string => p !== null);
  }
}

/** The enqueue script's answer as the gateway reports it. */
function enqueueOutcome(code: number): { outcome: EnqueueOutcome; wakeIdle: boolean } {
  const reply = replyOf('enqueue', code);
  return reply === 'queuedWakeIdle' ? { outcome: 'queued', wakeIdle: true } : { outcome: reply, wakeIdle: false };
}

/** What lookupJob.lua answers: the index entry, and the payload or dead entry found there. */
export interface RawLookup {
  where: string;
  found: string;
  position: number;
  leaseUntil: number;
  now: number;
}

export type DeleteOutcome = 'deleted' | 'unknown' | 'running' | 'dead' | 'finished';

export interface WorkerView {
  id: string;
  leaseLeftMs: number;
  running: Array<{ id: string; url: string; method: string; level: Level; attempt: number; runningSeconds: number }>;
}
