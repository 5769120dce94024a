// One partition's script calls: each method is one script call (atomic), or, for a waiting
// worker, one blocking pop; the scripts in ./scripts document their KEYS and ARGV. The
// operator's plain reads of a partition are in views.ts. The program reaches a Store only
// through Queues (queues.ts), which holds one per partition.
import type { RedisClient } from './redis';
import type { CallRequest } from '../call/params';
import type { Level } from '../levels';
import { LEVEL2_OFF_ABOVE, LEVEL2_ON_BELOW } from '../policy';
import { encodeJob, newJobId, type Job } from './format/job';
import type { TraceCarrier } from '../trace';
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
  /** Runs of one named group at once (--group-concurrency; 0 or absent: no cap). */
  groupConcurrency?: number;
  /** Runs of one named group per second (--group-rate; 0 or absent: no limit). */
  groupRate?: number;
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

/**
 * Most waiting messages one lookup or delete reads to find a job in the lists (a message waiting
 * in a list has no index entry unless its id is the caller's): one call never reads without bound.
 */
export const SCAN_MAX = 100_000;

/** What a claim delivered, and which levels still have work waiting in its partition (bit 1: level 1, bit 2: level 2). */
export interface Claimed {
  runs: DeliveredRun[];
  workLeft: number;
  /** How many of the acknowledgements sent along (ClaimSettles) Redis took: runs still in the worker's hash. */
  acknowledged: number;
  /** Ms until a group held back by its rate may run (0: none is): the worker blocks no longer. */
  dueInMs: number;
}

/** Finished runs sent along with a claim, settled by it first (finishJobs' work, in the same call). */
export interface ClaimSettles {
  acks: readonly Ack[];
  /** How long finished jobs stay visible to lookup (--keep-done; 0: not at all). */
  keepMs: number;
}

/**
 * One partition of a deployment's queues: every script call of it. A deployment of
 * one partition is this store alone, under the tag `{prefix}`; one of several has partition p
 * under `{prefix:p}` or the tag stored for it (queues.ts holds the deployment as a whole).
 */
export class Store {
  readonly keys: Keys;
  /** One partition: an enqueue hands its message to an idle worker itself (see enqueue.lua). */
  private readonly handOff: boolean;
  /** Each script's keys, built once (per worker id for the scripts that take a worker's keys). */
  private readonly builtKeys = new Map<string, readonly string[]>();

  constructor(
    readonly redis: RedisClient,
    prefix: string,
    readonly partition?: number,
    tag?: string,
  ) {
    this.keys = keysFor(prefix, partition, tag);
    this.handOff = partition === undefined;
    defineScripts(redis);
  }

  /** A script's keys in this partition, in the order its `-- KEYS:` line names them; `workerId` for a worker's own. */
  private keysOf(script: ScriptName, workerId?: string): readonly string[] {
    const cacheKey = workerId === undefined ? script : `${script}\n${workerId}`;
    let keys = this.builtKeys.get(cacheKey);
    if (!keys) {
      // A worker's ids change only with its lease generation: a small cache, emptied when it grows.
      if (this.builtKeys.size > 256) this.builtKeys.clear();
      this.builtKeys.set(cacheKey, (keys = keyNamesOf(script).map((name) => keyNamed(this.keys, name, workerId))));
    }
    return keys;
  }

  /**
   * `wakeIdle`: queued while an idle worker waits on the deployment's wake keys (several
   * partitions only). `replicas`: with limits.replicasAck, how many replicas confirmed it.
   */
  async enqueue(
    call: CallRequest,
    limits: AdmissionLimits,
    trace?: TraceCarrier,
  ): Promise<{ id: string; outcome: EnqueueOutcome; wakeIdle: boolean; replicas?: number }> {
    const q = call.queue!;
    // A caller's own id (queue_detail.id) makes a retried call safe: a known id queues nothing.
    const id = q.id ?? newJobId();
    const keys = this.keysOf('enqueue');
    // The job's id, level, policy and key travel once, in the payload: the script reads them there.
    const args = [
      q.id === undefined ? '' : '1',
      encodeJob(id, call, trace),
      limits.capacity,
      limits.discardThreshold,
      this.keys.tag,
      LEVEL2_OFF_ABOVE,
      LEVEL2_ON_BELOW,
      this.handOff ? 'handoff' : 'report',
      q.delayMs ?? 0,
      trace ? '1' : '',
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
   * waitForWork (for less than that), where the next job may be handed to it. `settles`:
   * finished runs acknowledged first, in the same call (as finish would).
   * 'lost': the worker's lease had run out; nothing was settled or claimed.
   */
  async claim(
    workerId: string,
    n: number,
    level2Room: number,
    selection: SelectionOptions,
    leaseMs: number,
    idleRegistrationMs = IDLE_REGISTRATION_MS,
    takesLevel1 = true,
    settles?: ClaimSettles,
  ): Promise<Claimed | 'lost'> {
    const args: Array<string | number> = [
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
      settles?.keepMs ?? 0,
      selection.groupConcurrency ?? 0,
      selection.groupRate ?? 0,
    ];
    if (settles) pushAcks(args, settles.acks);
    const reply = await runScript<Array<number | string> | number>(this.redis, 'claimJobs', this.keysOf('claimJobs', workerId), args);
    if (typeof reply === 'number') return replyOf('claimJobs', reply);
    const runs: DeliveredRun[] = [];
    const partition = this.partition ?? 0;
    for (let i = 3; i < reply.length; i += 2) runs.push({ token: Number(reply[i]), payload: String(reply[i + 1]), partition });
    return { runs, workLeft: Number(reply[0]), acknowledged: Number(reply[1]), dueInMs: Number(reply[2]) };
  }

  /**
   * Acknowledges finished runs, keeping them for lookup `keepMs` (0: not at all; pruneDone
   * forgets them); 'lost' (nothing counted) when the worker's lease had run out.
   */
  async finish(workerId: string, acks: readonly Ack[], keepMs = 0): Promise<number | 'lost'> {
    const args: Array<string | number> = [workerId, keepMs];
    pushAcks(args, acks);
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

  /** Forgets group rate limiters idle more than idleMs, a thousand fields from `cursor` on; the next cursor ('0': done). */
  async pruneLimiters(cursor: string, idleMs: number): Promise<string> {
    return String(await runScript<string>(this.redis, 'pruneLimiters', this.keysOf('pruneLimiters'), [cursor, idleMs]));
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

  /** Every dead job back in line (oldest first); returns how many were requeued. */
  requeueAllDead(): Promise<number> {
    return runScript<number>(this.redis, 'requeueDead', this.keysOf('requeueDead'), ['all', '']);
  }

  /** One dead job back in line: 'requeued', 'unknown' (no dead job has that id) or 'superseded' (its key has a newer message). */
  async requeueDead(id: string): Promise<'requeued' | 'unknown' | 'superseded'> {
    return replyOf('requeueDead', await runScript<number>(this.redis, 'requeueDead', this.keysOf('requeueDead'), ['one', id]));
  }

  /** Removes one dead job (deleteDead.lua): 'deleted', or 'unknown' when no dead job has that id. */
  async deleteDead(id: string): Promise<'deleted' | 'unknown'> {
    return replyOf('deleteDead', await runScript<number>(this.redis, 'deleteDead', this.keysOf('deleteDead'), [id]));
  }

  /** Empties the dead list in one step; returns how many entries it held. */
  purgeDead(): Promise<number> {
    return runScript<number>(this.redis, 'purgeDead', this.keysOf('purgeDead'), []);
  }

  /**
   * Where a job is and what it holds; null when this partition does not know it. A message
   * waiting in a list without an index entry is found by reading the lists, at most `scanMax`
   * entries: beyond that an unfound id answers `where` '' and `searched` (it may wait further back).
   */
  async lookup(id: string, scanMax = SCAN_MAX): Promise<RawLookup | null> {
    const k = this.keys;
    const reply = await runScript<Array<string | number>>(this.redis, 'lookupJob', this.keysOf('lookupJob'), [id, k.tag, scanMax]);
    if (reply.length === 0) return null;
    const where = String(reply[0]);
    if (where === '') return { where, found: '', position: -1, leaseUntil: 0, now: Number(reply[4]), searched: Number(reply[2]) };
    return { where, found: String(reply[1]), position: Number(reply[2]), leaseUntil: Number(reply[3]), now: Number(reply[4]) };
  }

  /** Removes a waiting or retrying job (a waiting one among the first `scanMax` of the lists it may be in). */
  async deleteJob(id: string, scanMax = SCAN_MAX): Promise<DeleteOutcome> {
    const [code] = await runScript<[number, string]>(this.redis, 'deleteJob', this.keysOf('deleteJob'), [id, scanMax]);
    const reply = replyOf('deleteJob', code);
    // An index entry that named the wrong place was dropped: to the operator the job is unknown.
    return reply === 'notWhereIndexed' ? 'unknown' : reply;
  }

  /** Pauses (no worker claims it; calls are still accepted) or resumes a level; true when that changed its state. */
  async setPaused(level: Level, paused: boolean): Promise<boolean> {
    return (await runScript<number>(this.redis, 'pauseLevel', this.keysOf('pauseLevel'), [level, paused ? 'pause' : 'resume'])) === 1;
  }
}

/** Acknowledgements as finishJobs and claimJobs take them: groups of 6 (finishRuns.lua). */
function pushAcks(args: Array<string | number>, acks: readonly Ack[]): void {
  for (const { job, outcome, status } of acks) args.push(job.token, job.id, job.level, job.policy === 'last' ? (job.key ?? '') : '', outcome, status);
}

/** The enqueue script's answer as the gateway reports it. */
function enqueueOutcome(code: number): { outcome: EnqueueOutcome; wakeIdle: boolean } {
  const reply = replyOf('enqueue', code);
  return reply === 'queuedWakeIdle' ? { outcome: 'queued', wakeIdle: true } : { outcome: reply, wakeIdle: false };
}

/** What lookupJob.lua answers: the index entry, and the payload or dead entry found there. */
export interface RawLookup {
  /** The index entry ('' when there is none and the job was not among the `searched` waiting messages read). */
  where: string;
  found: string;
  position: number;
  leaseUntil: number;
  now: number;
  /** Only with where '': how many waiting messages were read (the lists hold more). */
  searched?: number;
}

/** `notWithinScan`: not indexed, and not among the first waiting messages read (the lists hold more). */
export type DeleteOutcome = 'deleted' | 'unknown' | 'notWithinScan' | 'running' | 'dead' | 'finished';
