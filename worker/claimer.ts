// The claim loop: while slots are free, claims jobs (weighted fair, decided in Redis) and hands
// them to the runner; with nothing to claim, blocks until a job is handed to this worker or a
// wake marker appears. Pauses by itself while Redis is away. With several partitions it
// claims from each in turn, starting one further each round.
import type { Level } from '../shared/call/params';
import { log } from '../shared/ops/log';
import type { Queues } from '../shared/store/queues';
import type { RedisClient } from '../shared/store/redis';
import type { SelectionOptions } from '../shared/store/store';
import { monotonicMs } from './lease-clock';
import type { LeaseKeeper } from './lease-keeper';
import type { Part } from './periodic';
import type { Runner } from './runner';

export interface ClaimerOptions {
  queues: Queues;
  /** A connection of its own, used only for blocking waits. */
  blocking: RedisClient;
  keeper: LeaseKeeper;
  runner: Runner;
  concurrency: number;
  reserve: number;
  /** Deployment-wide; each partition gets its share of the capacity. */
  selection: SelectionOptions;
  /** The levels this worker takes. */
  levels: readonly Level[];
  attempts: number;
  deadMax: number;
}

/** Shorter than IDLE_REGISTRATION_MS: the claim after each block renews the idle registration. */
const IDLE_BLOCK_SECONDS = 1;
const REDIS_RETRY_MS = 250;

export class Claimer implements Part {
  private stopping = false;
  private loop: Promise<void> = Promise.resolve();
  /** Set after a Redis error: a reply may have been lost, so Redis may record runs we do not hold. */
  private needsReconcile = false;
  private redisReady = true;
  /** The partition the next round starts with. */
  private firstPartition = 0;
  private wakeOnStop: () => void = () => undefined;
  private readonly stopRequested = new Promise<void>((resolve) => (this.wakeOnStop = resolve));

  constructor(private readonly o: ClaimerOptions) {}

  get claiming(): boolean {
    return !this.stopping;
  }

  get redisAnswers(): boolean {
    return this.redisReady;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Stops claiming; a blocked wait is cut short. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeOnStop();
    this.o.blocking.disconnect();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { keeper, runner } = this.o;
    while (!this.stopping) {
      if (this.o.concurrency - runner.running <= 0) {
        await Promise.race([runner.slotFreed(), this.stopRequested]);
        // Let every run that ends in this turn of the event loop free its slot: one claim for all.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      try {
        if (!keeper.isRegistered) await keeper.register();
        const workerId = keeper.id;
        // Safe here: no claim of ours is in flight, so every run we hold is in the runner.
        if (this.needsReconcile) await this.reconcile(workerId);
        const claimed = await this.claimRound(workerId);
        this.redisBack();
        if (claimed === 'lost') {
          keeper.lost(workerId, 'Redis refused a claim');
          continue;
        }
        if (claimed.started > 0 || this.stopping) continue;
        await this.waitForWork(workerId, claimed.levels);
      } catch (err) {
        if (this.stopping) break;
        this.redisAway(err);
        await new Promise((resolve) => setTimeout(resolve, REDIS_RETRY_MS));
      }
    }
  }

  /** One claim per partition while slots are free; the runs are started as they come. */
  private async claimRound(workerId: string): Promise<{ started: number; levels: Level[] } | 'lost'> {
    const { queues, keeper, runner, concurrency, reserve } = this.o;
    const n = queues.partitions;
    const selection = queues.share(this.o.selection);
    let started = 0;
    let workLeft = 0;
    let levels: Level[] = [1, 2];
    for (let i = 0; i < n; i++) {
      const free = concurrency - runner.running;
      if (free <= 0) break;
      const takes = this.o.levels;
      const level2Room = takes.includes(2) ? Math.max(0, Math.min(free, concurrency - reserve - runner.runningLevel2)) : 0;
      // The levels an idle wait listens to match the idle registration an empty claim makes.
      levels = [...(takes.includes(1) ? [1 as const] : []), ...(level2Room > 0 ? [2 as const] : [])];
      const store = queues.stores[(this.firstPartition + i) % n];
      const sentAt = monotonicMs();
      const claimed = await store.claim(workerId, free, level2Room, selection, keeper.heldForMs, undefined, takes.includes(1));
      if (claimed === 'lost') return 'lost';
      // With one partition a claim renews the whole lease; with several, only this partition's.
      if (n === 1) keeper.renewed(workerId, sentAt);
      for (const run of claimed.runs) void runner.start(run, workerId);
      started += claimed.runs.length;
      workLeft |= claimed.workLeft;
    }
    this.firstPartition = (this.firstPartition + 1) % n;
    // Pass the baton: work left behind wakes another idle worker (with one partition the claim did).
    if (n > 1) for (const level of [1, 2] as const) if (workLeft & level) await queues.wakeIdle(level);
    return { started, levels };
  }

  /** Blocks until a job is handed to this worker (one partition), a wake marker appears, or a second passes. */
  private async waitForWork(workerId: string, levels: Level[]): Promise<void> {
    const { queues, runner, blocking } = this.o;
    if (levels.length === 0) {
      // Nothing this worker may take has room (a level-2 worker full): wait for a slot.
      await Promise.race([runner.slotFreed(), this.stopRequested, new Promise((resolve) => setTimeout(resolve, IDLE_BLOCK_SECONDS * 1000))]);
      return;
    }
    if (queues.partitions > 1) {
      await queues.waitForWake(blocking, levels, IDLE_BLOCK_SECONDS);
      return;
    }
    const handed = await queues.stores[0].waitForWork(blocking, workerId, levels, IDLE_BLOCK_SECONDS);
    if (handed) void runner.start(handed, workerId);
  }

  private redisAway(err: unknown): void {
    if (this.redisReady)
      log.warn({ event: 'worker_paused', err: { message: (err as Error).message } }, `worker paused, redis unavailable (${(err as Error).message})`);
    this.redisReady = false;
    this.needsReconcile = true;
  }

  private redisBack(): void {
    if (!this.redisReady) log.info({ event: 'worker_resumed' }, 'worker resumed claiming');
    this.redisReady = true;
  }

  /** Hands back runs Redis records for this worker that it does not hold (a claim reply lost in an outage). */
  private async reconcile(workerId: string): Promise<void> {
    let handedBack = 0;
    for (const store of this.o.queues.stores) {
      handedBack += await store.requeueWorker(workerId, 'orphans', this.o.attempts, this.o.deadMax, this.o.runner.heldTokens(workerId, store.partition ?? 0));
    }
    this.needsReconcile = false;
    if (handedBack > 0)
      log.warn(
        { event: 'jobs_recovered', worker: workerId, jobs: handedBack, why: 'claim reply lost' },
        `${handedBack} job(s) claimed during the outage but never received went back in line`,
      );
  }
}
