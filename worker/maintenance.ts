// The chores every worker shares with the others, each step one atomic script, so it is safe
// for all of them to run them at once: recovering the runs of workers whose lease ran out,
// moving retries that are due back into their queues, and forgetting finished jobs kept for
// lookup once their time is up. Each partition has a chore of its own: a partition whose Redis
// hangs (up to the command timeout) holds back nothing in the others.
import { log } from '../shared/log';
import type { Queues } from '../shared/store/queues';
import { periodic, type Part } from './periodic';

export interface MaintenanceOptions {
  queues: Queues;
  /** This worker's current id (never recovered by itself while it holds the lease). */
  selfId: () => string;
  attempts: number;
  deadMax: number;
  everyMs: number;
}

/** How often kept finished jobs are pruned, and how many one script call forgets at most. */
const PRUNE_EVERY_MS = 1000;
const PRUNE_BATCH = 1000;

/** One periodic chore per partition, started and stopped together; `task` is given the partition's number. */
function perPartition(name: string, queues: Queues, everyMs: number, task: (partition: number) => Promise<void>): Part {
  const parts = Array.from({ length: queues.partitions }, (_, p) =>
    periodic(queues.partitions > 1 ? `${name} (partition ${p})` : name, everyMs, () => task(p)),
  );
  return {
    start: () => parts.forEach((part) => part.start()),
    stop: async () => void (await Promise.all(parts.map((part) => part.stop()))),
  };
}

/** Each expired worker is recovered on its own: one that fails (logged) does not hold back the others. */
export function createRecoverer(o: MaintenanceOptions): Part {
  return perPartition('recovery', o.queues, o.everyMs, async (p) => {
    for (const workerId of await o.queues.expiredWorkers(p)) {
      if (workerId === o.selfId()) continue;
      try {
        const jobs = await o.queues.requeueWorker(p, workerId, 'expired', o.attempts, o.deadMax);
        log.warn({ event: 'jobs_recovered', worker: workerId, jobs }, `worker ${workerId} lost its lease; ${jobs} job(s) back in line`);
      } catch (err) {
        log.error(
          { event: 'recovery_failed', worker: workerId, err: { message: (err as Error).message } },
          `could not recover worker ${workerId}: ${(err as Error).message}`,
        );
      }
    }
  });
}

export function createRetryMover(o: MaintenanceOptions): Part {
  return perPartition('retry promotion', o.queues, o.everyMs, async (p) => void (await o.queues.promoteDue(p, o.deadMax)));
}

/**
 * Forgets finished jobs kept past --keep-done (all of them for a worker that keeps none: the
 * smallest --keep-done of a deployment wins). In batches, until none is due.
 */
export function createDonePruner(o: MaintenanceOptions & { keepDoneMs: number; keepMax: number }): Part {
  return perPartition('finished-job pruning', o.queues, PRUNE_EVERY_MS, async (p) => {
    while ((await o.queues.pruneDone(p, o.keepDoneMs, o.keepMax, PRUNE_BATCH)) === PRUNE_BATCH);
  });
}

/** How often idle group rate limiters are forgotten, and after how long idle (docs/design.md, Tenants). */
const LIMITER_PRUNE_EVERY_MS = 60_000;
export const LIMITER_IDLE_MS = 2 * 3_600_000;

/** Forgets the rate limiters of groups idle for LIMITER_IDLE_MS: one pass over {p}:groups:tat per round. */
export function createLimiterPruner(o: MaintenanceOptions): Part {
  return perPartition('group limiter pruning', o.queues, LIMITER_PRUNE_EVERY_MS, async (p) => {
    let cursor = '0';
    do cursor = await o.queues.pruneLimiters(p, cursor, LIMITER_IDLE_MS);
    while (cursor !== '0');
  });
}
