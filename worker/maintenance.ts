// The chores every worker shares with the others, each step one atomic script, so it is safe
// for all of them to run them at once: recovering the runs of workers whose lease ran out,
// moving retries that are due back into their queues, and forgetting finished jobs kept for
// lookup once their time is up.
import { log } from '../shared/ops/log';
import type { Queues } from '../shared/store/queues';
import type { Store } from '../shared/store/store';
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

/** Every partition in turn: a partition whose Redis does not answer (logged) does not hold back the others. */
export function createRecoverer(o: MaintenanceOptions): Part {
  return periodic('recovery', o.everyMs, async () => {
    const failures = await Promise.allSettled(o.queues.stores.map((store) => recoverPartition(store, o)));
    const failed = failures.find((f) => f.status === 'rejected');
    if (failed) throw failed.reason;
  });
}

/** Each expired worker is recovered on its own: one that fails (logged) does not hold back the others. */
async function recoverPartition(store: Store, o: MaintenanceOptions): Promise<void> {
  for (const workerId of await store.expiredWorkers()) {
    if (workerId === o.selfId()) continue;
    try {
      const jobs = await store.requeueWorker(workerId, 'expired', o.attempts, o.deadMax);
      log.warn({ event: 'jobs_recovered', worker: workerId, jobs }, `worker ${workerId} lost its lease; ${jobs} job(s) back in line`);
    } catch (err) {
      log.error(
        { event: 'recovery_failed', worker: workerId, err: { message: (err as Error).message } },
        `could not recover worker ${workerId}: ${(err as Error).message}`,
      );
    }
  }
}

export function createRetryMover(o: MaintenanceOptions): Part {
  return periodic('retry promotion', o.everyMs, async () => {
    const failures = await Promise.allSettled(o.queues.stores.map((store) => store.promoteDue(o.deadMax)));
    const failed = failures.find((f) => f.status === 'rejected');
    if (failed) throw failed.reason;
  });
}

/**
 * Forgets finished jobs kept past --keep-done (all of them for a worker that keeps none: the
 * smallest --keep-done of a deployment wins). In batches, until none is due.
 */
export function createDonePruner(o: MaintenanceOptions & { keepDoneMs: number; keepMax: number }): Part {
  return periodic('finished-job pruning', PRUNE_EVERY_MS, async () => {
    const failures = await Promise.allSettled(
      o.queues.stores.map(async (store) => {
        while ((await store.pruneDone(o.keepDoneMs, o.keepMax, PRUNE_BATCH)) === PRUNE_BATCH);
      }),
    );
    const failed = failures.find((f) => f.status === 'rejected');
    if (failed) throw failed.reason;
  });
}
