// Every Redis key of one deployment, in one place. All share the hash tag {prefix}, so one
// deployment lives in one Cluster slot. docs/protocol.md (section 6) documents them all.
import type { Level, Policy } from '../levels';

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
  /** Job id -> where the job is now (a short string, see scripts/helpers/setWhere.lua), for lookup. */
  readonly jobs: string;
  /** "L1"/"L2" -> "1" while that level is paused. */
  readonly paused: string;
  /** Finished jobs kept for lookup (--keep-done): id -> finished time (Redis ms). */
  readonly done: string;
  /** A named group's queue of a level (`last`: its hash; see groupOrder, groupNewest). */
  groupQueue(level: Level, group: string, policy: Policy): string;
  groupOrder(level: Level, group: string): string;
  groupNewest(level: Level, group: string): string;
  /** The ring of a level: named groups with something in line -> their turn stamp (Redis µs). */
  groupRing(level: Level): string;
  /** group -> its runs in worker hashes now. */
  readonly groupsRunning: string;
  /** group -> `<concurrency>:<rate per second>` set by `switchyard group`. */
  readonly groupsLimits: string;
  /** group -> its rate limiter's theoretical arrival time (Redis ms). */
  readonly groupsTat: string;
}

/**
 * The keys of one partition of a deployment. Without `partition` (a deployment of one
 * partition) the hash tag is `{prefix}`; partition p of several has `{prefix:p}`, or the tag
 * stored for it in `{prefix}:partitions` (placement.ts: chosen on a Cluster so that the
 * partitions spread over the masters), each partition in one slot.
 */
export function keysFor(prefix: string, partition?: number, tag = partition === undefined ? `{${prefix}}` : `{${prefix}:${partition}}`): Keys {
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
    // enqueue.lua and lookupJob.lua build this name and workerJobs' itself (the worker is chosen inside the script).
    inbox: (workerId) => `${tag}:worker:${workerId}:inbox`,
    idle: (level) => `${tag}:idle:L${level}`,
    delayed: `${tag}:delayed`,
    wake,
    runs,
    newest,
    jobs,
    paused,
    done,
    // The scripts build a group's key names themselves from the tag (groupKey.lua), the same way.
    groupQueue: (level, group, policy) => `${tag}:L${level}:g:${group}:${policy}`,
    groupOrder: (level, group) => `${tag}:L${level}:g:${group}:last:order`,
    groupNewest: (level, group) => `${tag}:L${level}:g:${group}:last:newest`,
    groupRing: (level) => `${tag}:L${level}:groups`,
    groupsRunning: `${tag}:groups:running`,
    groupsLimits: `${tag}:groups:limits`,
    groupsTat: `${tag}:groups:tat`,
  };
}

/**
 * A key by the name scripts give it in their `-- KEYS:` line: what follows the tag
 * (`stats`, `L1:last:order`, `idle:L2` …), except `worker` and `inbox`, a worker's own hash of
 * runs and inbox, which need its id. An unknown name throws: a script and this file disagree.
 */
export function keyNamed(keys: Keys, name: string, workerId?: string): string {
  const ofWorker = (key: (id: string) => string): string => {
    if (workerId === undefined) throw new Error(`the key ${name} is a worker's: a worker id is needed`);
    return key(workerId);
  };
  const level = /^(?:L([12]):|(?:wake|idle):L([12])$)/.exec(name);
  const l = level ? (Number(level[1] ?? level[2]) as Level) : undefined;
  switch (name) {
    case 'worker':
      return ofWorker(keys.workerJobs);
    case 'inbox':
      return ofWorker(keys.inbox);
    case 'L1:execute':
    case 'L2:execute':
      return keys.queue(l!, 'execute');
    case 'L1:discard':
    case 'L2:discard':
      return keys.queue(l!, 'discard');
    case 'L1:last':
    case 'L2:last':
      return keys.queue(l!, 'last');
    case 'L1:last:order':
    case 'L2:last:order':
      return keys.order(l!);
    case 'L1:last:newest':
    case 'L2:last:newest':
      return keys.newest(l!);
    case 'wake:L1':
    case 'wake:L2':
      return keys.wake(l!);
    case 'idle:L1':
    case 'idle:L2':
      return keys.idle(l!);
    case 'L2:active':
      return keys.l2Active;
    case 'L1:groups':
    case 'L2:groups':
      return keys.groupRing(l!);
    case 'groups:running':
      return keys.groupsRunning;
    case 'groups:limits':
      return keys.groupsLimits;
    case 'groups:tat':
      return keys.groupsTat;
    case 'running':
    case 'stats':
    case 'dead':
    case 'sched':
    case 'workers':
    case 'delayed':
    case 'runs':
    case 'jobs':
    case 'paused':
    case 'done':
      return keys[name];
    default:
      throw new Error(`no key is named ${JSON.stringify(name)} (keys.ts, keyNamed)`);
  }
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
