// The claim loop: while slots are free, claims jobs (weighted fair, decided in Redis) and hands
// them to the runner; with nothing to claim, blocks until a job is handed to this worker or a
// wake marker appears. Pauses by itself while Redis is away.
import type Redis from 'ioredis';
import type { Level } from '../shared/call/params';
import { log } from '../shared/ops/log';
import type { SelectionOptions, Store } from '../shared/store/store';
import { monotonicMs } from './lease-clock';
import type { LeaseKeeper } from './lease-keeper';
import type { Part } from './periodic';
import type { Runner } from './runner';

export interface ClaimerOptions {
  store: Store;
  /** A connection of its own, used only for blocking waits. */
  blocking: Redis;
  keeper: LeaseKeeper;
  runner: Runner;
  concurrency: number;
  reserve: number;
  selection: SelectionOptions;
  leaseMs: number;
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
    const { store, keeper, runner, concurrency, reserve } = this.o;
    while (!this.stopping) {
      const free = concurrency - runner.running;
      if (free <= 0) {
        await Promise.race([runner.slotFreed(), this.stopRequested]);
        // Let every run that ends in this turn of the event loop free its slot: one claim for all.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const level2Room = Math.max(0, Math.min(free, concurrency - reserve - runner.runningLevel2));
      try {
        if (!keeper.isRegistered) await keeper.register();
        const workerId = keeper.id;
        // Safe here: no claim of ours is in flight, so every run we hold is in the runner.
        if (this.needsReconcile) await this.reconcile(workerId);
        const sentAt = monotonicMs();
        const runs = await store.claim(workerId, free, level2Room, this.o.selection, this.o.leaseMs);
        this.redisBack();
        if (runs === 'lost') {
          keeper.lost(workerId, 'Redis refused a claim');
          continue;
        }
        keeper.renewed(workerId, sentAt);
        for (const run of runs) void runner.start(run, workerId);
        if (runs.length > 0 || this.stopping) continue;
        // The levels waited for match the idle registration the empty claim just made.
        const levels: Level[] = level2Room > 0 ? [1, 2] : [1];
        const handed = await store.waitForWork(this.o.blocking, workerId, levels, IDLE_BLOCK_SECONDS);
        if (handed) void runner.start(handed, workerId);
      } catch (err) {
        if (this.stopping) break;
        this.redisAway(err);
        await new Promise((resolve) => setTimeout(resolve, REDIS_RETRY_MS));
      }
    }
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
    const handedBack = await this.o.store.requeueWorker(workerId, 'orphans', this.o.attempts, this.o.deadMax, this.o.runner.heldTokens(workerId));
    this.needsReconcile = false;
    if (handedBack > 0)
      log.warn(
        { event: 'jobs_recovered', worker: workerId, jobs: handedBack, why: 'claim reply lost' },
        `${handedBack} job(s) claimed during the outage but never received went back in line`,
      );
  }
}
