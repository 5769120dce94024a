// Every Redis key of one deployment, in one place. All share the hash tag {prefix}, so one
// deployment lives in one Cluster slot. docs/protocol.md (section 6) documents them all.
import type { Level, Policy } from '../call/params';

export interface Keys {
  readonly tag: string;
  queue(level: Level, policy: Policy): string;
  order(level: Level): string;
  readonly l2Active: string;
  readonly dead: string;
  readonly stats: string;
  /** Internal: `last` keys being run, "L<level>:<key>" -> run token. */
  readonly running: string;
  /** Internal: smooth weighted round robin state shared by all workers. */
  readonly sched: string;
  /** Internal: live workers, id -> lease expiry (Redis ms). */
  readonly workers: string;
  /** Internal: one worker's runs, run token -> payload. */
  workerJobs(workerId: string): string;
  /** Internal: payloads handed straight to one idle worker (already in its workerJobs hash). */
  inbox(workerId: string): string;
  /** Internal: workers blocked for work that can take this level, id -> registration fresh until (Redis time, ms). */
  idle(level: Level): string;
  /** Internal: retries waiting for their time, payload scored by due time (Redis ms). */
  readonly delayed: string;
  /** Internal: marker lists idle workers block on. */
  wake(level: Level): string;
  /** Internal: counter of runs started; each run's token (its fencing token) is the next value. */
  readonly runs: string;
  /** Internal: `last` key -> id of its newest accepted message, while one of its messages is alive. */
  newest(level: Level): string;
  /** Job id -> where the job is now (a short string, see includes/queues.lua), for lookup. */
  readonly jobs: string;
  /** "L1"/"L2" -> "1" while that level is paused. */
  readonly paused: string;
  /** Finished jobs kept for lookup (--keep-done): id -> finished time (Redis ms). */
  readonly done: string;
  /** The 19 keys every script starts with (shared/store/scripts/includes/queues.lua). */
  readonly common: readonly string[];
}

/**
 * The keys of one partition of a deployment. Without `partition` (a deployment of one
 * partition) the hash tag is `{prefix}`; partition p of several has `{prefix:p}`, so on a
 * Redis Cluster the partitions spread over the masters while each stays in one slot.
 */
export function keysFor(prefix: string, partition?: number): Keys {
  const tag = partition === undefined ? `{${prefix}}` : `{${prefix}:${partition}}`;
  const queue = (level: Level, policy: Policy): string => `${tag}:L${level}:${policy}`;
  const order = (level: Level): string => `${tag}:L${level}:last:order`;
  const wake = (level: Level): string => `${tag}:wake:L${level}`;
  const running = `${tag}:running`;
  const stats = `${tag}:stats`;
  const l2Active = `${tag}:L2:active`;
  const runs = `${tag}:runs`;
  const newest = (level: Level): string => `${tag}:L${level}:last:newest`;
  const jobs = `${tag}:jobs`;
  const paused = `${tag}:paused`;
  const done = `${tag}:done`;
  return {
    tag,
    queue,
    order,
    l2Active,
    dead: `${tag}:dead`,
    stats,
    running,
    sched: `${tag}:sched`,
    workers: `${tag}:workers`,
    workerJobs: (workerId) => `${tag}:worker:${workerId}`,
    // enqueue-22.lua and lookupJob-22.lua build this name and workerJobs' itself (the worker is chosen inside the script).
    inbox: (workerId) => `${tag}:worker:${workerId}:inbox`,
    idle: (level) => `${tag}:idle:L${level}`,
    delayed: `${tag}:delayed`,
    wake,
    runs,
    newest,
    jobs,
    paused,
    done,
    common: Object.freeze([
      queue(1, 'execute'),
      queue(1, 'discard'),
      queue(1, 'last'),
      order(1),
      queue(2, 'execute'),
      queue(2, 'discard'),
      queue(2, 'last'),
      order(2),
      running,
      stats,
      wake(1),
      wake(2),
      l2Active,
      runs,
      newest(1),
      newest(2),
      jobs,
      paused,
      done,
    ]),
  };
}

/** Keys of the deployment as a whole, under the plain `{prefix}` tag. */
export interface DeploymentKeys {
  /** The number of partitions the deployment was started with: every process must agree. */
  readonly partitions: string;
  /** Wake markers idle workers block on. With one partition, the partition's own. */
  wake(level: Level): string;
}

export function deploymentKeys(prefix: string): DeploymentKeys {
  const tag = `{${prefix}}`;
  return { partitions: `${tag}:partitions`, wake: (level) => `${tag}:wake:L${level}` };
}
