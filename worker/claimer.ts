// The claim loop: while slots are free, claims jobs (weighted fair, decided in Redis) and hands
// them to the runner; with nothing to claim, blocks until a job is handed to this worker or a
// wake marker appears. With several partitions it claims from each in turn, starting one
// further each round; a partition whose Redis errors or hangs is left out (and tried again
// after a backoff) while the others are claimed as before: a shard's loss stops that shard only.
import type { Level } from '../shared/levels';
import { log } from '../shared/log';
import { level2Room } from '../shared/policy';
import type { Queues } from '../shared/store/queues';
import type { RedisClient } from '../shared/store/redis';
import type { Claimed, SelectionOptions } from '../shared/store/store';
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
/** How long a blocking wait may go unanswered before the loop claims again anyway (a master that hangs). */
const IDLE_BLOCK_PATIENCE_MS = IDLE_BLOCK_SECONDS * 1000 + 500;
/** A partition that erred is tried again after this, doubling up to the last. */
const PARTITION_RETRY_MS = [250, 500, 1000, 2000];
/**
 * With several partitions, how long a round waits for one partition's claim before it goes on
 * without it: a master that hangs (stopped, or unreachable without an error) must not hold back
 * the claims of the others for the whole command timeout.
 */
const CLAIM_PATIENCE_MS = 500;

/** What the loop knows of one partition. */
interface PartitionState {
  /** A claim of this partition whose answer came too late or not yet: nothing else is sent there meanwhile. */
  inFlight: boolean;
  /** Set after an error: a claim reply may have been lost, so Redis may record runs we do not hold. */
  needsReconcile: boolean;
  /** Not claimed from again before this time (monotonic), after an error. */
  retryAt: number;
  failures: number;
  /** Since when the partition fails (monotonic), while it does: logged once per outage. */
  downSince?: number;
}

type ClaimOutcome = { workerId: string; sentAt: number; claimed: Claimed | 'lost' };

export class Claimer implements Part {
  private stopping = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly parts: PartitionState[];
  /** The partition the next round starts with. */
  private firstPartition = 0;
  /** A blocking wait that has not come back (its connection hangs): no second one is sent behind it. */
  private pendingWait: Promise<unknown> | undefined;
  private wakeOnStop: () => void = () => undefined;
  private readonly stopRequested = new Promise<void>((resolve) => (this.wakeOnStop = resolve));
  /** Slots were freed and a claim follows in this turn of the event loop: acknowledgements wait for it. */
  private claimDue = false;

  constructor(private readonly o: ClaimerOptions) {
    this.parts = Array.from({ length: o.queues.partitions }, () => ({ inFlight: false, needsReconcile: false, retryAt: 0, failures: 0 }));
    o.runner.acks.awaitClaims(() => this.claimDue);
  }

  get claiming(): boolean {
    return !this.stopping;
  }

  /** False while no partition answers. */
  get redisAnswers(): boolean {
    return this.parts.some((s) => s.downSince === undefined);
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
    const { runner } = this.o;
    while (!this.stopping) {
      if (this.o.concurrency - runner.running <= 0) {
        await Promise.race([runner.slotFreed(), this.stopRequested]);
        // Let every run that ends in this turn of the event loop free its slot: one claim for all,
        // which carries their acknowledgements.
        this.claimDue = true;
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      try {
        const claimed = await this.claimRound();
        if (claimed.started > 0 || this.stopping) continue;
        await this.waitForWork(claimed.levels, claimed.dueInMs);
      } catch {
        // Only the blocking wait gets here (each partition's errors are its own, recorded where they happen).
        if (this.stopping) break;
        await Promise.race([new Promise((resolve) => setTimeout(resolve, PARTITION_RETRY_MS[0])), this.stopRequested]);
      }
    }
  }

  /** One claim per partition that answers, while slots are free; the runs are started as they come. */
  private async claimRound(): Promise<{ started: number; levels: Level[]; dueInMs: number }> {
    const { queues, keeper, runner, concurrency, reserve } = this.o;
    const n = queues.partitions;
    let started = 0;
    let workLeft = 0;
    let dueInMs = 0;
    let levels = this.levelsWithRoom(concurrency - runner.running);
    for (let i = 0; i < n; i++) {
      const free = concurrency - runner.running;
      if (free <= 0 || this.stopping) break;
      const p = (this.firstPartition + i) % n;
      const part = this.parts[p];
      if (part.inFlight || monotonicMs() < part.retryAt) continue;
      if (n > 1 && part.downSince !== undefined) {
        // A partition that is down is asked whether it answers again in the background: a claim
        // sent there would hold the round up for its patience each time.
        this.probe(p);
        continue;
      }
      const takes = this.o.levels;
      const room = level2Room({ free, concurrency, reserve, runningLevel2: runner.runningLevel2, takesLevel2: takes.includes(2) });
      // The levels an idle wait listens to match the idle registration an empty claim makes.
      levels = this.levelsWithRoom(free);
      const outcome = await this.patiently(p, this.claimFrom(p, free, room));
      if (outcome === undefined) continue;
      const { workerId, sentAt, claimed } = outcome;
      if (claimed === 'lost') {
        keeper.lost(workerId, n > 1 ? `Redis refused a claim in partition ${p}: the lease had run out there` : 'Redis refused a claim: the lease had run out');
        continue;
      }
      keeper.renewed(workerId, sentAt);
      for (const run of claimed.runs) void runner.start(run, workerId);
      started += claimed.runs.length;
      workLeft |= claimed.workLeft;
      if (claimed.dueInMs > 0 && (dueInMs === 0 || claimed.dueInMs < dueInMs)) dueInMs = claimed.dueInMs;
    }
    this.firstPartition = (this.firstPartition + 1) % n;
    this.claimDue = false;
    // Pass the baton: work left behind wakes another idle worker (with one partition the claim did).
    if (n > 1) for (const level of [1, 2] as const) if (workLeft & level) await queues.wakeIdle(level).catch(() => undefined);
    return { started, levels, dueInMs };
  }

  private levelsWithRoom(free: number): Level[] {
    const { concurrency, reserve, runner } = this.o;
    const takes = this.o.levels;
    const room = level2Room({ free, concurrency, reserve, runningLevel2: runner.runningLevel2, takesLevel2: takes.includes(2) });
    return [...(takes.includes(1) ? [1 as const] : []), ...(room > 0 ? [2 as const] : [])];
  }

  /** Registers in partition p when needed, hands back what an outage may have left there, and claims. */
  private async claimFrom(p: number, free: number, room: number): Promise<ClaimOutcome> {
    const { queues, keeper } = this.o;
    await keeper.register(p);
    const workerId = keeper.idIn(p);
    // Safe here: no claim of ours in this partition is in flight, so every run we hold there is in
    // the runner — unless, with one partition, a wait still out may yet deliver a job handed to us.
    if (this.parts[p].needsReconcile && !(queues.partitions === 1 && this.pendingWait)) await this.reconcile(p, workerId);
    const sentAt = monotonicMs();
    const selection = queues.share(this.o.selection);
    // The acknowledgements waiting for this id and partition are settled by the claim first.
    const { acks } = this.o.runner;
    const settles = acks.take(workerId, p);
    let claimed: Claimed | 'lost';
    try {
      claimed = await queues.claim(p, workerId, free, room, selection, keeper.heldForMs, undefined, this.o.levels.includes(1), settles);
    } catch (err) {
      // The reply may be lost after Redis settled them: sent again alone (a repeat counts nothing).
      if (settles) acks.rode(workerId, p, settles, false);
      throw err;
    }
    if (settles) acks.rode(workerId, p, settles, true);
    return { workerId, sentAt, claimed };
  }

  /**
   * The claim's outcome, or undefined when the partition erred or (with several) did not answer
   * in time: the round goes on without it. A claim that answers late delivers runs nobody
   * started; they are handed back by the reconcile before the partition's next claim.
   */
  private async patiently(p: number, claim: Promise<ClaimOutcome>): Promise<ClaimOutcome | undefined> {
    const part = this.parts[p];
    let timer: NodeJS.Timeout | undefined;
    const late = Symbol('late');
    const patience =
      this.o.queues.partitions > 1 ? new Promise<typeof late>((resolve) => (timer = setTimeout(() => resolve(late), CLAIM_PATIENCE_MS))) : undefined;
    try {
      const outcome = await (patience ? Promise.race([claim, patience]) : claim);
      if (outcome === late) {
        part.inFlight = true;
        this.partitionFailed(p, new Error(`no answer within ${CLAIM_PATIENCE_MS} ms`));
        void claim.then(
          () => this.lateAnswer(p),
          () => this.lateAnswer(p),
        );
        return undefined;
      }
      this.partitionAnswers(p);
      return outcome;
    } catch (err) {
      if (!this.stopping) this.partitionFailed(p, err);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A cheap read of partition p: once it answers, the next round claims from it again (after the reconcile). */
  private probe(p: number): void {
    const part = this.parts[p];
    part.inFlight = true;
    void this.o.queues.pausedLevels(p).then(
      () => {
        part.inFlight = false;
        this.partitionAnswers(p);
      },
      (err: unknown) => {
        part.inFlight = false;
        this.partitionFailed(p, err);
      },
    );
  }

  private lateAnswer(p: number): void {
    const part = this.parts[p];
    part.inFlight = false;
    // Whatever it claimed (or registered, or handed back) was not taken up: check before the next claim.
    part.needsReconcile = true;
  }

  private partitionFailed(p: number, err: unknown): void {
    const part = this.parts[p];
    const message = (err as Error)?.message ?? String(err);
    part.needsReconcile = true;
    part.retryAt = monotonicMs() + PARTITION_RETRY_MS[Math.min(part.failures, PARTITION_RETRY_MS.length - 1)];
    part.failures++;
    if (part.downSince !== undefined) return;
    const allDown = this.parts.every((s) => s === part || s.downSince !== undefined);
    part.downSince = monotonicMs();
    if (this.o.queues.partitions === 1 || allDown) log.warn({ event: 'worker_paused', err: { message } }, `worker paused, redis unavailable (${message})`);
    if (this.o.queues.partitions > 1)
      log.warn(
        { event: 'partition_unavailable', partition: p, err: { message } },
        `partition ${p} unavailable (${message}): not claimed from until it answers; the other partitions are claimed as before`,
      );
  }

  private partitionAnswers(p: number): void {
    const part = this.parts[p];
    part.failures = 0;
    part.retryAt = 0;
    if (part.downSince === undefined) return;
    const downMs = monotonicMs() - part.downSince;
    const wasAllDown = this.parts.every((s) => s.downSince !== undefined);
    part.downSince = undefined;
    if (this.o.queues.partitions > 1) log.info({ event: 'partition_back', partition: p, downMs }, `partition ${p} answers again after ${downMs} ms`);
    if (this.o.queues.partitions === 1 || wasAllDown) log.info({ event: 'worker_resumed' }, 'worker resumed claiming');
  }

  /** Blocks until a job is handed to this worker (one partition), a wake marker appears, or a second passes. */
  /** `dueInMs`: a group held back by its rate may run then (0: none is): the wait ends by then. */
  private async waitForWork(levels: Level[], dueInMs = 0): Promise<void> {
    const { queues, runner, blocking, keeper } = this.o;
    if (levels.length === 0) {
      // Nothing this worker may take has room (a level-2 worker full): wait for a slot.
      await Promise.race([runner.slotFreed(), this.stopRequested, new Promise((resolve) => setTimeout(resolve, IDLE_BLOCK_SECONDS * 1000))]);
      return;
    }
    if (queues.partitions === 1 && !keeper.isRegisteredIn(0)) {
      // Not registered (Redis away): nothing can be handed to this worker; wait for the next try.
      const retryIn = Math.max(PARTITION_RETRY_MS[0], this.parts[0].retryAt - monotonicMs());
      await Promise.race([new Promise((resolve) => setTimeout(resolve, retryIn)), this.stopRequested]);
      return;
    }
    // A wait whose connection hangs (its master stopped) is not answered for as long as that
    // lasts: claim again after a while anyway, without sending another wait behind it.
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise((resolve) => (timer = setTimeout(resolve, dueInMs > 0 ? Math.min(dueInMs, IDLE_BLOCK_PATIENCE_MS) : IDLE_BLOCK_PATIENCE_MS)));
    try {
      if (this.pendingWait) {
        await Promise.race([this.pendingWait, patience, this.stopRequested]);
        return;
      }
      const workerId = keeper.idIn(0);
      // Redis takes a block timeout in fractions of a second (its clock ticks every 10 ms or so).
      const blockSeconds = dueInMs > 0 ? Math.min(IDLE_BLOCK_SECONDS, Math.max(0.01, dueInMs / 1000)) : IDLE_BLOCK_SECONDS;
      const wait = queues.waitForWork(blocking, workerId, levels, blockSeconds);
      const settled = wait.then(
        (handed) => {
          if (handed) void runner.start(handed, workerId);
        },
        (err: unknown) => {
          if (this.stopping) return;
          // A job handed to this worker may have been popped and its reply lost: check before the next claim.
          if (queues.partitions === 1) this.partitionFailed(0, err);
          throw err;
        },
      );
      this.pendingWait = settled;
      void settled.then(
        () => (this.pendingWait = undefined),
        () => (this.pendingWait = undefined),
      );
      await Promise.race([settled, patience, this.stopRequested]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Hands back runs Redis records for this worker in partition p that it does not hold (a claim reply lost in an outage). */
  private async reconcile(p: number, workerId: string): Promise<void> {
    const { queues, runner, attempts, deadMax } = this.o;
    const handedBack = await queues.requeueWorker(p, workerId, 'orphans', attempts, deadMax, runner.heldTokens(workerId, p));
    this.parts[p].needsReconcile = false;
    if (handedBack > 0)
      log.warn(
        { event: 'jobs_recovered', worker: workerId, ...(queues.partitions > 1 && { partition: p }), jobs: handedBack, why: 'claim reply lost' },
        `${handedBack} job(s) claimed during the outage but never received went back in line`,
      );
  }
}
