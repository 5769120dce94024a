// The worker's identity and its lease. One lease per worker id covers every run it holds; it
// lives in Redis ({p}:workers, scored on Redis's clock) and is renewed by a thread of its own
// (lease-thread.ts), so a handler that blocks the event loop cannot starve it. An id lives
// once: when its lease is lost (the process stalled past it, or Redis said so), the runs it
// held are abandoned here (recovery gives them to other workers) and the worker carries on
// under a new id.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { Worker as Thread } from 'node:worker_threads';
import { log } from '../shared/ops/log';
import type { Queues } from '../shared/store/queues';
import { LeaseClock, leaseTiming, monotonicMs, SLOT } from './lease-clock';
import type { LeaseLostMessage, LeaseThreadData } from './lease-thread';

export interface LeaseKeeperOptions {
  queues: Queues;
  redisUrl: string;
  leaseMs: number;
}

const HEARTBEAT_EVERY_MS = 100;

function newWorkerId(): string {
  return `${hostname().replace(/[^\w.-]/g, '')}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** The thread's compiled file: beside this one in dist/, or in dist/ when this runs from sources (ts-jest). */
function threadFile(): string {
  const beside = path.join(__dirname, 'lease-thread.js');
  if (existsSync(beside)) return beside;
  return path.join(__dirname, '..', 'dist', 'worker', 'lease-thread.js');
}

export class LeaseKeeper {
  private currentId = newWorkerId();
  private registered = false;
  private readonly clock = new LeaseClock();
  private thread: Thread | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private stopped = false;
  private retired = false;
  private readonly lostListeners: Array<(workerId: string) => void> = [];

  /** How long each registration, renewal or claim holds the lease in Redis (lease-clock.ts). */
  readonly heldForMs: number;

  constructor(private readonly o: LeaseKeeperOptions) {
    this.heldForMs = leaseTiming(o.leaseMs).heldForMs;
  }

  /** The id the worker claims under now. */
  get id(): string {
    return this.currentId;
  }

  get isRegistered(): boolean {
    return this.registered;
  }

  start(): void {
    this.clock.set(SLOT.heartbeat, monotonicMs());
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_EVERY_MS);
    this.startThread();
  }

  /**
   * The main loop's heartbeat. After a stall it is also the earliest moment this process can
   * see that its lease may be gone (the renewal thread needs a round trip to be sure): the
   * runs are abandoned here, before their handlers' next step if their timers come later.
   */
  private beat(): void {
    const now = monotonicMs();
    this.clock.set(SLOT.heartbeat, now);
    if (this.registered && now > this.clock.get(SLOT.validUntil)) this.lost(this.currentId, 'the process stalled past its lease');
  }

  private startThread(): void {
    const data: LeaseThreadData = {
      redisUrl: this.o.redisUrl,
      prefix: this.o.queues.prefix,
      partitions: this.o.queues.partitions,
      leaseMs: this.o.leaseMs,
      workerId: this.currentId,
      buffer: this.clock.buffer,
    };
    const thread = new Thread(threadFile(), { workerData: data });
    thread.on('message', (message: LeaseLostMessage) => this.lost(message.workerId, 'the lease ran out'));
    thread.on('error', (err) => log.error({ event: 'lease_thread_failed', err: { message: err.message } }, `lease renewal thread failed: ${err.message}`));
    // A thread that died is replaced: without it the lease would run out under healthy jobs.
    thread.on('exit', () => {
      if (!this.stopped) this.startThread();
    });
    this.thread = thread;
  }

  /** Enters the current id in Redis. False while Redis does not answer (try again). */
  async register(): Promise<boolean> {
    if (this.registered) return true;
    const sentAt = monotonicMs();
    while (!(await this.o.queues.register(this.currentId, this.heldForMs))) this.currentId = newWorkerId();
    this.clock.set(SLOT.validUntil, sentAt + this.heldForMs);
    this.registered = true;
    this.thread?.postMessage({ type: 'identity', workerId: this.currentId });
    return true;
  }

  /** A claim renewed the lease of `workerId` (sent at `sentAt`). */
  renewed(workerId: string, sentAt: number): void {
    if (workerId === this.currentId) this.clock.raise(SLOT.validUntil, sentAt + this.heldForMs);
  }

  /** While the main loop is blocked, the lease is kept until this time (a running job's deadline). */
  holdUntil(at: number): void {
    this.clock.set(SLOT.holdUntil, at);
  }

  /**
   * True when `workerId` is the current id and its lease surely still holds in Redis, so a run
   * may start: nobody can have recovered it. When unsure (the last renewal is older than the
   * lease), asks Redis, and treats a refusal as a lost lease.
   */
  async mayStart(workerId: string): Promise<boolean> {
    if (workerId !== this.currentId || !this.registered) return false;
    if (monotonicMs() < this.clock.get(SLOT.validUntil)) return true;
    const sentAt = monotonicMs();
    if (await this.o.queues.renewLease(workerId, this.heldForMs)) {
      this.renewed(workerId, sentAt);
      return true;
    }
    this.lost(workerId, 'Redis refused to renew it');
    return false;
  }

  /** Called once per lost id, before the worker takes a new one. */
  onLost(listener: (workerId: string) => void): void {
    this.lostListeners.push(listener);
  }

  /** The lease of `workerId` is gone: its runs are abandoned and the worker registers anew. */
  lost(workerId: string, why: string): void {
    if (workerId !== this.currentId || !this.registered || this.retired) return;
    this.registered = false;
    this.clock.set(SLOT.validUntil, 0);
    log.error({ event: 'lease_lost', worker: workerId, why }, `worker ${workerId} lost its lease (${why}); its runs are abandoned and run again elsewhere`);
    for (const listener of this.lostListeners) listener(workerId);
    this.currentId = newWorkerId();
  }

  /** The worker is handing its runs back and leaving: the end of its lease is no longer news. */
  retire(): void {
    this.retired = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    const thread = this.thread;
    if (!thread) return;
    const exited = new Promise((resolve) => thread.once('exit', resolve));
    thread.postMessage({ type: 'stop' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 1000))]);
    await thread.terminate();
  }
}
