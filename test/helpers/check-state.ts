// The end of every end-to-end test that used Redis: `switchyard check` over what the test left,
// once its processes are stopped. Zero problems are required; a failing check fails the test
// with the checker's own lines (each problem: code, where, ids and keys, what --repair would do).
import { checkDeployment, formatReport, type CheckReport } from '../../shared/store/check';
import { deploymentKeys } from '../../shared/store/keys';
import { storedCount } from '../../shared/store/placement';
import { Queues } from '../../shared/store/queues';
import { connectQuietly, createRedis } from '../../shared/store/redis';
import { scanKeys } from '../../shared/store/check/read';

export interface CleanStateOptions {
  /** The partition count to check (default: the one stored in Redis, else 1). */
  partitions?: number;
  /**
   * How long after a worker's lease ran out its runs may still wait for recovery (see
   * CheckOptions.recoveryGraceMs). A test that SIGKILLs workers and starts no other can leave
   * runs of a worker whose lease is still running: those are not problems.
   */
  recoveryGraceMs?: number;
  /** Checks again until clean for this long (a recovery or a retry may still be on its way); default 5 s. */
  waitMs?: number;
}

/** Runs the checker (no repair) until it is clean or the wait is over; throws with its lines otherwise. */
export async function expectCleanState(redisUrl: string, prefix: string, options: CleanStateOptions = {}): Promise<CheckReport> {
  const redis = createRedis(redisUrl, 'cli');
  try {
    if (!(await connectQuietly(redis, 5000))) throw new Error(`switchyard check: redis at ${redisUrl} is not answering`);
    const stored = await redis.get(deploymentKeys(prefix).partitions);
    const queues = new Queues(redis, prefix, options.partitions ?? storedCount(stored, prefix) ?? 1);
    const until = Date.now() + (options.waitMs ?? 5000);
    for (;;) {
      const report = await checkDeployment(queues, { recoveryGraceMs: options.recoveryGraceMs });
      if (report.ok) return report;
      if (Date.now() >= until)
        throw new Error(`switchyard check found problems in the state the test left (prefix ${prefix}):\n${formatReport(report, queues)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * For a test whose prefix is not at hand in its teardown (a Redis of its own, the default
 * prefix): every deployment found in that Redis, by the hash tags of its keys.
 */
export async function expectCleanRedis(redisUrl: string, options: Omit<CleanStateOptions, 'partitions'> = {}): Promise<string[]> {
  const redis = createRedis(redisUrl, 'cli');
  const tags = new Set<string>();
  try {
    if (!(await connectQuietly(redis, 5000))) throw new Error(`switchyard check: redis at ${redisUrl} is not answering`);
    for await (const key of scanKeys(redis, '{*}:*')) {
      const tag = /^\{([^}]+)\}:/.exec(key)?.[1];
      if (tag) tags.add(tag);
    }
  } finally {
    redis.disconnect();
  }
  // {prefix:N} (or, chosen on a Cluster, {prefix:N.M}) is partition N of the deployment {prefix}, which holds its partition count.
  const prefixes = [...tags].filter((tag) => {
    const partition = /^(.+):\d+(?:\.\d+)?$/.exec(tag);
    return !(partition && tags.has(partition[1]));
  });
  const failures: string[] = [];
  for (const prefix of prefixes) await expectCleanState(redisUrl, prefix, options).catch((err: Error) => failures.push(err.message));
  if (failures.length > 0) throw new Error(failures.join('\n'));
  return prefixes;
}

/** For an afterAll that must still close what it opened: the check's failure, thrown by the caller at the end. */
export function failureOf(check: Promise<unknown>): Promise<Error | null> {
  return check.then(
    () => null,
    (err: Error) => err,
  );
}
