// The only code that talks to Redis about queues. Each method is one script call (atomic)
// or one read-only pipeline; the scripts in ./scripts document their KEYS and ARGV.
import type Redis from 'ioredis';
import { decodeJob, encodeJob, newJobId, type Job } from './job';
import type { CallRequest, Level } from '../call/params';
import { keysFor, type Keys } from './keys';
import { defineScripts, runScript } from './scripts';

export type EnqueueOutcome = 'queued' | 'replaced' | 'refused' | 'dropped';
const ENQUEUE_OUTCOMES: Record<number, EnqueueOutcome> = { 1: 'queued', 2: 'replaced', 3: 'refused', 4: 'dropped' };

export interface AdmissionLimits {
  capacity: number;
  discardThreshold: number;
}

export interface SelectionOptions {
  weights: readonly [number, number];
  strict: boolean;
  capacity: number;
}

export interface Ack {
  job: Job;
  outcome: 'done' | 'dropped';
}

export interface QueueStats {
  queues: Record<string, number>;
  backlog: { L1: number; L2: number };
  level2Active: boolean;
  inFlight: number;
  workers: number;
  /** Workers blocked for work right now (fresh idle registrations): new jobs go straight to them. */
  idle: number;
  delayed: number;
  dead: number;
  counters: Record<string, number>;
}

/**
 * How long an idle registration (made by an empty claim) lasts unless renewed. A worker must
 * block for less than this between claims; a worker killed while idle is a candidate for
 * hand-off at most this long after its death.
 */
export const IDLE_REGISTRATION_MS = 1500;

export class Store {
  readonly keys: Keys;

  constructor(
    readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = keysFor(prefix);
    defineScripts(redis);
  }

  async enqueue(call: CallRequest, limits: AdmissionLimits, now = Date.now()): Promise<{ id: string; outcome: EnqueueOutcome }> {
    const q = call.queue!;
    const id = newJobId();
    const code = await runScript<number>(this.redis, 'enqueue', [...this.keys.common, this.keys.idle(1), this.keys.idle(2)], [
      q.level, q.policy, q.key, encodeJob(id, call, now), limits.capacity, limits.discardThreshold, this.keys.tag,
    ]);
    return { id, outcome: ENQUEUE_OUTCOMES[code] };
  }

  /**
   * Takes the jobs handed to this worker, then claims up to n in all (at most level2Room of
   * level 2), and renews the worker's lease. With nothing to take the worker is registered
   * idle for idleRegistrationMs: it must then block in waitForWork (for less than that), where
   * the next job may be handed to it.
   */
  async claim(workerId: string, n: number, level2Room: number, selection: SelectionOptions, leaseExpiry: number, idleRegistrationMs = IDLE_REGISTRATION_MS): Promise<Job[]> {
    const k = this.keys;
    const payloads = await runScript<string[]>(this.redis, 'claimJobs', [...k.common, k.sched, k.workerJobs(workerId), k.workers, k.idle(1), k.idle(2), k.inbox(workerId)], [
      workerId, leaseExpiry, n, level2Room, selection.weights[0], selection.weights[1], selection.strict ? '1' : '0', selection.capacity, idleRegistrationMs,
    ]);
    return payloads.map(decodeJob);
  }

  finish(workerId: string, acks: readonly Ack[]): Promise<number> {
    const args: Array<string | number> = [];
    for (const { job, outcome } of acks) args.push(job.id, job.level, job.policy === 'last' ? job.key ?? '' : '', outcome);
    return runScript<number>(this.redis, 'finishJobs', [...this.keys.common, this.keys.workerJobs(workerId)], args);
  }

  /** Returns 'retry' | 'dead' | 'superseded' | 'lost' (no longer this worker's job). */
  async fail(workerId: string, job: Job, plan: { retryPayload: string; dueAt: number } | { deadEntry: string; deadMax: number }): Promise<'retry' | 'dead' | 'superseded' | 'lost'> {
    const retry = 'retryPayload' in plan;
    const code = await runScript<number>(this.redis, 'failJob', [...this.keys.common, this.keys.workerJobs(workerId), this.keys.delayed, this.keys.dead], [
      job.id, job.level, job.policy === 'last' ? job.key ?? '' : '', retry ? 'retry' : 'dead',
      retry ? plan.retryPayload : '', retry ? plan.dueAt : 0, retry ? '' : plan.deadEntry, retry ? 0 : plan.deadMax,
    ]);
    return (['lost', 'retry', 'dead', 'superseded'] as const)[code];
  }

  promoteDue(now: number, max = 200): Promise<number> {
    return runScript<number>(this.redis, 'promoteDue', [...this.keys.common, this.keys.delayed], [now, max]);
  }

  /**
   * Hands a worker's jobs back to their queues: all of a dead worker's (`expired`, attempt + 1),
   * all of a stopping worker's (`shutdown`), or those recorded for a live worker that it does
   * not hold (`orphans`: a claim whose reply was lost), keeping the ids in `held`.
   */
  requeueWorker(workerId: string, mode: 'expired' | 'shutdown' | 'orphans', attempts: number, deadMax: number, held: readonly string[] = [], now = Date.now()): Promise<number> {
    const k = this.keys;
    return runScript<number>(this.redis, 'requeueWorker', [...k.common, k.workerJobs(workerId), k.workers, k.dead, k.idle(1), k.idle(2), k.inbox(workerId)], [
      workerId, now, mode, attempts, deadMax, ...held,
    ]);
  }

  expiredWorkers(now: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.workers, '-inf', now, 'LIMIT', 0, 20);
  }

  async renewLease(workerId: string, expiry: number): Promise<void> {
    await this.redis.zadd(this.keys.workers, expiry, workerId);
  }

  /**
   * Blocks until a job is handed to this worker (returned: it is already the worker's, as if
   * claimed) or a wake marker of the given levels appears (null: claim next), or the timeout.
   */
  async waitForWork(blocking: Redis, workerId: string, levels: readonly Level[], timeoutSeconds: number): Promise<Job | null> {
    const inbox = this.keys.inbox(workerId);
    const woken = await blocking.blpop(inbox, ...levels.map((l) => this.keys.wake(l)), timeoutSeconds);
    return woken !== null && woken[0] === inbox ? decodeJob(woken[1]) : null;
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
    pipeline.get(k.l2Active).llen(k.dead).hgetall(k.stats).zrange(k.workers, 0, -1).zcard(k.delayed).time();
    const results = (await pipeline.exec())!.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    const queues: Record<string, number> = {};
    names.forEach((name, i) => (queues[name] = Number(results[i])));
    const workers = results[9] as string[];
    // Registrations are scored in Redis time, so count against Redis's clock, not ours.
    const [seconds, micros] = results[11] as [string, string];
    const p = this.redis.pipeline().zcount(k.idle(1), Number(seconds) * 1000 + Math.floor(Number(micros) / 1000), '+inf');
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
      inFlight,
      workers: workers.length,
      idle: Number(idle),
      delayed: Number(results[10]),
      dead: Number(results[7]),
      counters,
    };
  }

  listDead(limit: number): Promise<string[]> {
    return this.redis.lrange(this.keys.dead, 0, limit - 1);
  }

  requeueDead(id: string | '*'): Promise<number> {
    return runScript<number>(this.redis, 'requeueDead', [...this.keys.common, this.keys.dead], [id]);
  }

  /** Empties the dead list in one transaction, so the count is of exactly what was removed. */
  async purgeDead(): Promise<number> {
    const results = await this.redis.multi().llen(this.keys.dead).del(this.keys.dead).exec();
    const [err, length] = results![0];
    if (err) throw err;
    return Number(length);
  }
}
