// A worker process's engine, wired in one place and in one order: the lease keeper (identity
// and lease), the shared chores (recovery of dead workers' runs, due retries), then the claim
// loop that feeds the runner. Stopped in the reverse order.
import type { RedisClient } from '../shared/store/redis';
import type { LoadedApp } from '../shared/call/app';
import type { Level } from '../shared/levels';
import { log } from '../shared/log';
import type { Job } from '../shared/store/format/job';
import type { Queues } from '../shared/store/queues';
import { Claimer } from './claimer';
import { LeaseKeeper } from './lease-keeper';
import { createDonePruner, createLimiterPruner, createRecoverer, createRetryMover } from './maintenance';
import { DONE_KEPT_MAX } from '../shared/policy';
import { Runner } from './runner';

export interface WorkerOptions {
  queues: Queues;
  /** A second connection, used only for blocking waits. */
  blocking: RedisClient;
  /** For the lease thread's own connection. */
  redisUrl: string;
  app: LoadedApp;
  concurrency: number;
  reserve: number;
  weights: readonly [number, number];
  strict: boolean;
  capacity: number;
  /** Runs of one named group at once / per second (0: none): the claim's defaults for groups without their own. */
  groupConcurrency?: number;
  groupRate?: number;
  leaseMs: number;
  attempts: number;
  backoffMs: number;
  deadMax: number;
  jobTimeoutMs: number;
  keepDoneMs: number;
  /** The levels this worker takes (a dedicated worker takes one). */
  levels: readonly Level[];
  debug: boolean;
  observe?: (job: Job, outcome: string, ms: number) => void;
  /** While tracing: a run's span is a child of the call that queued it (--otel-parent). */
  traceAsChild?: boolean;
}

export interface WorkerStatus {
  id: string;
  running: number;
  claiming: boolean;
  redisReady: boolean;
}

export interface Worker {
  readonly id: string;
  status(): WorkerStatus;
  start(): void;
  /**
   * Stops claiming, waits up to graceMs for running jobs, then hands the unfinished back to
   * their queues at once (not after the lease) and leaves the worker set.
   */
  stop(graceMs: number): Promise<{ finished: boolean; handedBack: number }>;
}

const MAINTENANCE_EVERY_MS = 500;

export function createWorker(o: WorkerOptions): Worker {
  const keeper = new LeaseKeeper({ queues: o.queues, redisUrl: o.redisUrl, leaseMs: o.leaseMs });
  const runner = new Runner({ ...o, keeper });
  const chores = {
    queues: o.queues,
    selfId: () => keeper.id,
    attempts: o.attempts,
    deadMax: o.deadMax,
    everyMs: Math.min(MAINTENANCE_EVERY_MS, Math.max(50, Math.floor(o.leaseMs / 4))),
  };
  const recoverer = createRecoverer(chores);
  const retryMover = createRetryMover(chores);
  const donePruner = createDonePruner({ ...chores, keepDoneMs: o.keepDoneMs, keepMax: DONE_KEPT_MAX });
  const limiterPruner = createLimiterPruner(chores);
  const claimer = new Claimer({
    queues: o.queues,
    blocking: o.blocking,
    keeper,
    runner,
    concurrency: o.concurrency,
    reserve: o.reserve,
    selection: { weights: o.weights, strict: o.strict, capacity: o.capacity, groupConcurrency: o.groupConcurrency ?? 0, groupRate: o.groupRate ?? 0 },
    levels: o.levels,
    attempts: o.attempts,
    deadMax: o.deadMax,
  });

  return {
    get id() {
      return keeper.id;
    },
    status: () => ({ id: keeper.id, running: runner.running, claiming: claimer.claiming, redisReady: claimer.redisAnswers }),
    start() {
      keeper.start();
      recoverer.start();
      retryMover.start();
      donePruner.start();
      limiterPruner.start();
      claimer.start();
    },
    async stop(graceMs) {
      await claimer.stop();
      const finished = await runner.drain(graceMs);
      if (!finished) runner.abortAll('the worker is shutting down: this run is handed back to its queue');
      keeper.retire();
      // Each partition under the id the worker holds there; one that does not answer keeps its
      // runs until its lease runs out (recovery), the others are handed back at once.
      let handedBack = 0;
      const handBacks = await Promise.allSettled(
        Array.from({ length: o.queues.partitions }, (_, p) => o.queues.requeueWorker(p, keeper.idIn(p), 'shutdown', o.attempts, o.deadMax)),
      );
      handBacks.forEach((outcome, partition) => {
        if (outcome.status === 'fulfilled') handedBack += outcome.value;
        else
          log.warn(
            { event: 'handback_failed', partition, err: { message: (outcome.reason as Error).message } },
            `could not hand jobs back${o.queues.partitions > 1 ? ` in partition ${partition}` : ''} (${(outcome.reason as Error).message}); they return after the lease`,
          );
      });
      await donePruner.stop();
      await limiterPruner.stop();
      await retryMover.stop();
      await recoverer.stop();
      await keeper.stop();
      return { finished, handedBack };
    },
  };
}
