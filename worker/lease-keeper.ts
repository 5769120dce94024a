// The worker's identities and their leases. A lease covers every run the worker holds in one
// partition; it lives in Redis ({p}:workers, scored on Redis's clock) and is renewed by a
// thread of its own (lease-thread.ts), so a handler that blocks the event loop cannot starve
// it. Each partition has its own lease under its own id (the process's base id, the partition
// and a generation): a partition whose Redis is lost costs that partition's runs only. An id
// lives once: when its lease is lost (the process stalled past it, Redis refused it, or the
// partition did not answer for longer than the lease), the runs it held are abandoned here
// (recovery gives them to other workers) and the worker carries on in that partition under
// the next generation's id.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker as Thread } from 'node:worker_threads';
import { log } from '../shared/log';
import { fromBuild } from '../shared/package-root';
import type { Queues } from '../shared/store/queues';
import { LeaseClock, leaseTiming, monotonicMs, PARTITION_SLOT, partitionWorkerId, SLOT, TROUBLE } from './lease-clock';
import type { LeaseLostMessage, LeaseThreadData } from './lease-thread';

export interface LeaseKeeperOptions {
  queues: Queues;
  redisUrl: string;
  leaseMs: number;
}

const HEARTBEAT_EVERY_MS = 100;

function newBaseId(): string {
  return `${hostname().replace(/[^\w.-]/g, '')}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** The thread's compiled file, in dist/ also when this runs from sources (ts-jest). */
function threadFile(): string {
  return fromBuild('worker', 'lease-thread.js');
}

export class LeaseKeeper {
  private readonly baseId = newBaseId();
  private readonly partitions: number;
  private readonly clock: LeaseClock;
  private thread: Thread | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastBeat = 0;
  private stopped = false;
  private retired = false;
  private readonly lostListeners: Array<(workerId: string) => void> = [];
  private readonly staleAfterMs: number;

  /** How long each registration, renewal or claim holds the lease in Redis (lease-clock.ts). */
  readonly heldForMs: number;

  constructor(private readonly o: LeaseKeeperOptions) {
    const timing = leaseTiming(o.leaseMs);
    this.heldForMs = timing.heldForMs;
    this.staleAfterMs = timing.staleAfterMs;
    this.partitions = o.queues.partitions;
    this.clock = new LeaseClock(this.partitions);
  }

  /** The process's id: with one partition the id it claims under now; with several, what every partition's id starts with. */
  get id(): string {
    return this.partitions === 1 ? this.idIn(0) : this.baseId;
  }

  /** The id the worker claims under in `partition` now. */
  idIn(partition: number): string {
    return partitionWorkerId(this.baseId, this.partitions, partition, this.generation(partition));
  }

  /** The partition an id of this process belongs to; -1 for an id that is not current. */
  private partitionOf(workerId: string): number {
    for (let p = 0; p < this.partitions; p++) if (this.idIn(p) === workerId) return p;
    return -1;
  }

  isRegisteredIn(partition: number): boolean {
    return this.slot(partition, PARTITION_SLOT.registered) === 1;
  }

  private slot(partition: number, slot: number): number {
    return this.clock.get(this.clock.of(partition, slot));
  }

  private setSlot(partition: number, slot: number, value: number): void {
    this.clock.set(this.clock.of(partition, slot), value);
  }

  private generation(partition: number): number {
    return this.slot(partition, PARTITION_SLOT.generation);
  }

  start(): void {
    this.lastBeat = monotonicMs();
    this.clock.set(SLOT.heartbeat, this.lastBeat);
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_EVERY_MS);
    this.startThread();
  }

  /**
   * The main loop's heartbeat. After a stall it is also the earliest moment this process can
   * see that a lease may be gone (the renewal thread needs a round trip to be sure): the runs
   * are abandoned here, before their handlers' next step if their timers come later.
   */
  private beat(): void {
    const now = monotonicMs();
    const stalled = now - this.lastBeat > this.staleAfterMs;
    this.lastBeat = now;
    this.clock.set(SLOT.heartbeat, now);
    for (let p = 0; p < this.partitions; p++) {
      if (this.isRegisteredIn(p) && now > this.slot(p, PARTITION_SLOT.validUntil)) this.lost(this.idIn(p), this.whyExpired(p, stalled));
    }
  }

  /** The real cause of a lease that ran out unrenewed: a stall, or a Redis that did not answer. */
  private whyExpired(partition: number, stalled: boolean): string {
    if (stalled || this.slot(partition, PARTITION_SLOT.trouble) === TROUBLE.stalled) return 'the process stalled past its lease';
    const where = this.partitions > 1 ? `partition ${partition}'s Redis` : 'Redis';
    return `${where} did not renew it for longer than the lease`;
  }

  private startThread(): void {
    const data: LeaseThreadData = {
      redisUrl: this.o.redisUrl,
      prefix: this.o.queues.prefix,
      partitions: this.partitions,
      leaseMs: this.o.leaseMs,
      baseId: this.baseId,
      buffer: this.clock.buffer,
    };
    const thread = new Thread(threadFile(), { workerData: data });
    thread.on('message', (message: LeaseLostMessage) => this.lost(message.workerId, message.why));
    thread.on('error', (err) => log.error({ event: 'lease_thread_failed', err: { message: err.message } }, `lease renewal thread failed: ${err.message}`));
    // A thread that died is replaced: without it the leases would run out under healthy jobs.
    thread.on('exit', () => {
      if (!this.stopped) this.startThread();
    });
    this.thread = thread;
  }

  /**
   * Enters the current id of `partition` in Redis (the next generation while an id is taken).
   * Throws while that partition's Redis does not answer (try again later); the others are not
   * concerned.
   */
  async register(partition: number): Promise<void> {
    if (this.isRegisteredIn(partition)) return;
    for (;;) {
      const sentAt = monotonicMs();
      const entered = await this.o.queues.register(this.idIn(partition), this.heldForMs, partition);
      // A registration that took longer than the lease is of no use (it may have run out already): the next one.
      if (entered && monotonicMs() < sentAt + this.heldForMs) {
        this.setSlot(partition, PARTITION_SLOT.validUntil, sentAt + this.heldForMs);
        this.setSlot(partition, PARTITION_SLOT.trouble, TROUBLE.none);
        this.setSlot(partition, PARTITION_SLOT.registered, 1);
        return;
      }
      this.setSlot(partition, PARTITION_SLOT.generation, this.generation(partition) + 1);
    }
  }

  /** A claim renewed the lease of `workerId` (sent at `sentAt`). */
  renewed(workerId: string, sentAt: number): void {
    const p = this.partitionOf(workerId);
    if (p !== -1 && this.isRegisteredIn(p)) this.clock.raise(this.clock.of(p, PARTITION_SLOT.validUntil), sentAt + this.heldForMs);
  }

  /** While the main loop is blocked, the leases are kept until this time (a running job's deadline). */
  holdUntil(at: number): void {
    this.clock.set(SLOT.holdUntil, at);
  }

  /**
   * True when `workerId` is the current id of its partition and that partition's lease surely
   * still holds in Redis, so a run delivered under it may start: nobody can have recovered it.
   * When unsure (the last renewal is older than the lease), asks that partition's Redis, and
   * treats a refusal, or no answer, as a lost lease.
   */
  async mayStart(workerId: string): Promise<boolean> {
    const p = this.partitionOf(workerId);
    if (p === -1 || !this.isRegisteredIn(p)) return false;
    if (monotonicMs() < this.slot(p, PARTITION_SLOT.validUntil)) return true;
    const sentAt = monotonicMs();
    let held: boolean;
    try {
      held = await this.o.queues.renewLease(workerId, this.heldForMs, p);
    } catch (err) {
      this.lost(workerId, `${this.partitions > 1 ? `partition ${p}'s Redis` : 'Redis'} did not answer whether it still held (${(err as Error).message})`);
      return false;
    }
    if (held) {
      this.renewed(workerId, sentAt);
      return true;
    }
    this.lost(workerId, 'Redis refused to renew it: it had run out there');
    return false;
  }

  /**
   * Synchronous, no round trip: the lease of `workerId` surely holds at this moment. A run whose
   * permission came before the event loop was blocked (by another run's handler) asks again.
   */
  surelyHolds(workerId: string): boolean {
    const p = this.partitionOf(workerId);
    return p !== -1 && this.isRegisteredIn(p) && monotonicMs() < this.slot(p, PARTITION_SLOT.validUntil);
  }

  /** Called once per lost id, before the worker takes a new one in that partition. */
  onLost(listener: (workerId: string) => void): void {
    this.lostListeners.push(listener);
  }

  /** The lease of `workerId` is gone: its runs (all in one partition) are abandoned and that partition registers anew. */
  lost(workerId: string, why: string): void {
    const p = this.partitionOf(workerId);
    if (p === -1 || !this.isRegisteredIn(p) || this.retired) return;
    // Registered first: the renewal thread stops renewing this id, and ignores an answer on its way.
    this.setSlot(p, PARTITION_SLOT.registered, 0);
    this.setSlot(p, PARTITION_SLOT.validUntil, 0);
    const partition = this.partitions > 1 ? { partition: p } : {};
    const scope = this.partitions > 1 ? ` in partition ${p}` : '';
    log.error(
      { event: 'lease_lost', worker: workerId, ...partition, why },
      `worker ${workerId} lost its lease${scope} (${why}); its runs${scope} are abandoned and run again elsewhere`,
    );
    for (const listener of this.lostListeners) listener(workerId);
    this.setSlot(p, PARTITION_SLOT.generation, this.generation(p) + 1);
  }

  /** The worker is handing its runs back and leaving: the end of its leases is no longer news. */
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
