// A worker process's engine: claims jobs (weighted fair, in Redis), runs them through the same
// in-process Koa dispatch as sync calls, acknowledges them in batches, renews its lease with
// one timer, and with the other workers recovers dead workers' jobs and promotes due retries.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type Redis from 'ioredis';
import type { LoadedApp } from '../shared/call/app';
import { dispatch } from '../shared/call/dispatch';
import { deadEntry, withAttempt, type Job } from '../shared/store/job';
import type { Reply } from '../shared/call/output';
import type { Ack, Store } from '../shared/store/store';
import { retryDelayMs, verdictFor } from './backoff';

export interface WorkerOptions {
  store: Store;
  /** A second connection, used only for blocking waits. */
  blocking: Redis;
  app: LoadedApp;
  concurrency: number;
  reserve: number;
  weights: readonly [number, number];
  strict: boolean;
  capacity: number;
  leaseMs: number;
  attempts: number;
  backoffMs: number;
  deadMax: number;
  debug: boolean;
  /** Called after each run, for metrics. */
  observe?: (job: Job, outcome: string, ms: number) => void;
}

export interface WorkerStatus {
  id: string;
  running: number;
  claiming: boolean;
  redisReady: boolean;
}

/** Shorter than IDLE_REGISTRATION_MS: the claim after each block renews the idle registration. */
const IDLE_BLOCK_SECONDS = 1;
const MAINTENANCE_EVERY_MS = 500;

export class Worker {
  readonly id = `${hostname().replace(/[^\w.-]/g, '')}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly running = new Map<string, Job>();
  private runningLevel2 = 0;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;
  private idle: (() => void) | undefined;
  private pendingAcks: Ack[] = [];
  /** Finished jobs whose acknowledgement has not reached Redis yet. */
  private readonly unacked = new Set<string>();
  /** Set after a Redis error: a reply may have been lost, so Redis may record jobs we do not hold. */
  private needsReconcile = false;
  private ackScheduled = false;
  private timers: NodeJS.Timeout[] = [];
  private redisReady = true;

  constructor(private readonly options: WorkerOptions) {}

  start(): void {
    const o = this.options;
    this.loop = this.claimLoop();
    // One timer renews the lease of every job this worker holds.
    this.timers.push(setInterval(() => void this.renewLease(), Math.max(50, Math.floor(o.leaseMs / 3))));
    this.timers.push(setInterval(() => void this.maintain(), Math.min(MAINTENANCE_EVERY_MS, Math.max(50, Math.floor(o.leaseMs / 4)))));
  }

  status(): WorkerStatus {
    return { id: this.id, running: this.running.size, claiming: !this.stopping, redisReady: this.redisReady };
  }

  /**
   * Stops claiming, waits up to graceMs for running jobs, then hands the unfinished back to
   * their queues at once (not after the lease) and leaves the worker set.
   */
  async stop(graceMs: number): Promise<{ finished: boolean; handedBack: number }> {
    this.stopping = true;
    this.slotFreed?.();
    this.options.blocking.disconnect();
    await this.loop;
    if (this.running.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const t of this.timers) clearInterval(t);
    await this.flushAcks();
    const finished = this.running.size === 0;
    let handedBack = 0;
    try {
      handedBack = await this.options.store.requeueWorker(this.id, 'shutdown', this.options.attempts, this.options.deadMax);
    } catch (err) {
      process.stderr.write(`switchyard: could not hand jobs back (${(err as Error).message}); they return after the lease\n`);
    }
    return { finished, handedBack };
  }

  private async claimLoop(): Promise<void> {
    const o = this.options;
    const selection = { weights: o.weights, strict: o.strict, capacity: o.capacity };
    while (!this.stopping) {
      const free = o.concurrency - this.running.size;
      if (free === 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        // Let every job that finishes in this turn of the event loop free its slot: one claim for all.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const level2Room = Math.max(0, Math.min(free, o.concurrency - o.reserve - this.runningLevel2));
      let jobs: Job[];
      try {
        // Safe here: no claim of ours is in flight, so every job we hold is in `running` or `unacked`.
        if (this.needsReconcile) await this.reconcile();
        jobs = await o.store.claim(this.id, free, level2Room, selection, Date.now() + o.leaseMs);
        this.redisReady = true;
      } catch (err) {
        if (this.stopping) break;
        this.redisUnavailable(err);
        await sleep(250);
        continue;
      }
      if (jobs.length === 0) {
        try {
          // The levels waited for match the idle registration the empty claim just made.
          const handed = await o.store.waitForWork(o.blocking, this.id, level2Room > 0 ? [1, 2] : [1], IDLE_BLOCK_SECONDS);
          if (handed) void this.run(handed);
        } catch (err) {
          if (this.stopping) break;
          this.redisUnavailable(err);
          await sleep(250);
        }
        continue;
      }
      for (const job of jobs) void this.run(job);
    }
  }

  private redisUnavailable(err: unknown): void {
    if (this.redisReady) process.stderr.write(`switchyard: worker paused, redis unavailable (${(err as Error).message})\n`);
    this.redisReady = false;
    this.needsReconcile = true;
  }

  /** Hands back jobs Redis records for this worker that it does not hold (a claim reply lost in an outage). */
  private async reconcile(): Promise<void> {
    const held = [...this.running.keys(), ...this.unacked];
    const handedBack = await this.options.store.requeueWorker(this.id, 'orphans', this.options.attempts, this.options.deadMax, held);
    this.needsReconcile = false;
    if (handedBack > 0) process.stderr.write(`switchyard: ${handedBack} job(s) claimed during the outage but never received went back in line\n`);
  }

  private async run(job: Job): Promise<void> {
    const o = this.options;
    this.running.set(job.id, job);
    if (job.level === 2) this.runningLevel2++;
    const started = performance.now();
    let outcome: string;
    try {
      if (job.expires !== null && Date.now() > job.expires) {
        outcome = 'dropped';
        this.acknowledge(job, 'dropped');
      } else {
        const reply = await dispatch(o.app, {
          url: job.url, method: job.method, headers: job.headers, content: job.content, reply: false,
          queue: { level: job.level, policy: job.policy, key: job.key ?? '' },
        }, { debug: o.debug, job: { id: job.id, attempt: job.attempt } });
        outcome = await this.settle(job, reply);
      }
    } catch (err) {
      outcome = 'error';
      this.needsReconcile = true;
      process.stderr.write(`switchyard: job ${job.id} could not be settled (${(err as Error).message}); it goes back in line when Redis answers\n`);
    }
    o.observe?.(job, outcome, performance.now() - started);
    this.running.delete(job.id);
    if (job.level === 2) this.runningLevel2--;
    this.slotFreed?.();
    this.slotFreed = undefined;
    if (this.running.size === 0) this.idle?.();
  }

  private async settle(job: Job, reply: Reply): Promise<string> {
    const o = this.options;
    const verdict = verdictFor(reply.status, job.attempt, o.attempts);
    if (verdict === 'done') {
      this.acknowledge(job, 'done');
      return 'done';
    }
    const error = typeof reply.data === 'string' ? reply.data : JSON.stringify(reply.data);
    const now = Date.now();
    if (verdict === 'retry') {
      return o.store.fail(this.id, job, { retryPayload: withAttempt(job.payload, job.attempt + 1), dueAt: now + retryDelayMs(o.backoffMs, job.attempt) });
    }
    return o.store.fail(this.id, job, { deadEntry: deadEntry(job, reply.status, error, now), deadMax: o.deadMax });
  }

  /** Acknowledgements of one turn of the event loop go to Redis in one script call. */
  private acknowledge(job: Job, outcome: Ack['outcome']): void {
    this.pendingAcks.push({ job, outcome });
    this.unacked.add(job.id);
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => void this.flushAcks());
    }
  }

  private async flushAcks(): Promise<void> {
    this.ackScheduled = false;
    if (this.pendingAcks.length === 0) return;
    const acks = this.pendingAcks;
    this.pendingAcks = [];
    for (let attempt = 0; ; attempt++) {
      try {
        await this.options.store.finish(this.id, acks);
        break;
      } catch (err) {
        // Redis away: keep the acknowledgements (bounded by concurrency) and try again;
        // acknowledging twice is harmless (the second finds nothing to remove).
        if (attempt >= 40 || this.stopping) {
          process.stderr.write(`switchyard: ${acks.length} acknowledgement(s) not delivered (${(err as Error).message}); those jobs will run again\n`);
          this.needsReconcile = true;
          break;
        }
        await sleep(250);
      }
    }
    for (const { job } of acks) this.unacked.delete(job.id);
  }

  private async renewLease(): Promise<void> {
    try {
      await this.options.store.renewLease(this.id, Date.now() + this.options.leaseMs);
    } catch {
      // The next tick tries again; a lease outlives several missed renewals.
    }
  }

  /** Shared chores, safe to run from every worker at once: each step is one atomic script. */
  private async maintain(): Promise<void> {
    const o = this.options;
    try {
      const now = Date.now();
      for (const workerId of await o.store.expiredWorkers(now)) {
        if (workerId === this.id) continue;
        const moved = await o.store.requeueWorker(workerId, 'expired', o.attempts, o.deadMax, [], now);
        process.stderr.write(`switchyard: worker ${workerId} lost its lease; ${moved} job(s) back in line\n`);
      }
      await o.store.promoteDue(now);
    } catch {
      // Redis away: the claim loop reports it.
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
