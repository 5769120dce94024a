// The state checker against a real Redis: a deployment made by real enqueues, claims, finishes,
// failures and handed jobs checks clean — also while it runs; then every problem code is made
// by corrupting that state by hand, the checker finds it (and only what was corrupted), and
// --repair repairs what it may, after which a second check is clean. Plus the CLI.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import type { CallRequest } from '../../shared/call/params';
import { checkDeployment, type CheckReport, type ProblemCode } from '../../shared/store/check';
import { decodeJob, type Job } from '../../shared/store/format/job';
import { deploymentKeys } from '../../shared/store/keys';
import { partitionStores, Queues } from '../../shared/store/queues';
import type { SelectionOptions, Store } from '../../shared/store/store';
import { uniquePrefix, type TestRedis } from '../helpers/redis';
import { asyncCall as callOf, suiteRedis } from '../helpers/store-calls';

const ADMISSION = { capacity: 1000, discardThreshold: 600 };
const SELECTION: SelectionOptions = { weights: [3, 1], strict: false, capacity: 1000 };
const LEASE = 60_000;
const BIN = path.join(__dirname, '..', '..', 'bin', 'switchyard.js');

/** An async call whose content names its url, so the checker's lines can be read back to it. */
const asyncCall = (url: string, level: 1 | 2, policy: 'execute' | 'last' | 'discard', detail: Record<string, unknown> = {}): CallRequest =>
  callOf(url, level, policy, detail, { url });

const suite = suiteRedis();
let server: TestRedis;
let redis: Redis;
beforeAll(() => ({ server, redis } = suite));

/** The Store of each partition: this file makes and corrupts a partition's state script by script. */
const storesOf = (queues: Queues): Store[] => partitionStores(queues.redis, queues.prefix, queues.partitions);

const codes = (report: CheckReport): ProblemCode[] => [...new Set(report.problems.map((p) => p.code))].sort();
const lines = (report: CheckReport): string => report.problems.map((p) => `${p.code}: ${p.message}`).join('\n');

async function claim(store: Store, worker: string, n: number): Promise<Job[]> {
  if (!(await redis.zscore(store.keys.workers, worker))) await store.register(worker, LEASE);
  const claimed = await store.claim(worker, n, n, SELECTION, LEASE);
  if (claimed === 'lost') throw new Error('lease lost');
  return claimed.runs.map((r) => decodeJob(r.token, r.payload));
}

/**
 * A deployment in every state a job can be in: waiting in each queue, a `last` key parked
 * behind its run, running, handed to an idle worker, delayed, retrying, dead, finished and kept.
 */
async function liveState(queues: Queues): Promise<{ store: Store; running: Job[]; worker: string }> {
  const store = storesOf(queues)[0];
  const worker = 'w-main';
  const enqueue = (call: CallRequest): Promise<unknown> => queues.enqueue(call, ADMISSION);
  for (let i = 0; i < 4; i++) await enqueue(asyncCall(`/e${i}`, 1, 'execute'));
  await enqueue(asyncCall('/k', 1, 'last', { key: 'k1' }));
  await enqueue(asyncCall('/k', 1, 'last', { key: 'k2' }));
  await enqueue(asyncCall('/d', 2, 'discard'));
  await enqueue(asyncCall('/l2', 2, 'last', { key: 'k3' }));
  await enqueue(asyncCall('/l2', 2, 'execute', { delay: 60 }));
  await enqueue(asyncCall('/l2', 1, 'last', { key: 'k4', delay: 60 }));
  // Claim everything, then settle each run a different way.
  const running = await claim(store, worker, 100);
  expect(running.length).toBe(8);
  const byUrl = (url: string, key?: string): Job => running.find((j) => j.url === url && (key === undefined || j.key === key))!;
  await store.finish(worker, [{ job: byUrl('/e0'), outcome: 'done', status: 200 }], 60_000);
  await store.finish(worker, [{ job: byUrl('/e1'), outcome: 'done', status: 200 }]);
  expect(await store.fail(worker, byUrl('/e2').token, { retryDelayMs: 60_000 }, 100)).toBe('retry');
  expect(await store.fail(worker, byUrl('/d').token, { status: 500, error: 'boom' }, 100)).toBe('dead');
  // k1 keeps running, and a newer message for it waits parked behind the run.
  await enqueue(asyncCall('/k-newer', 1, 'last', { key: 'k1' }));
  // A `last` message dies: its key keeps nothing running.
  expect(await store.fail(worker, byUrl('/l2', 'k3').token, { status: null, error: 'gone' }, 100)).toBe('dead');
  // An idle worker (its empty claim registers it) is handed the next job.
  expect(await claim(store, 'w-idle', 10)).toEqual([]);
  await enqueue(asyncCall('/handed', 1, 'execute'));
  expect(await redis.llen(store.keys.inbox('w-idle'))).toBe(1);
  // And more waiting behind: in a list, one without an index entry (the gateway's id) and one
  // with (the caller's id); a `last` message.
  await enqueue(asyncCall('/w0', 1, 'execute'));
  await enqueue(asyncCall('/w1', 1, 'execute', { id: 'w1-callers' }));
  await enqueue(asyncCall('/w2', 2, 'last', { key: 'k5' }));
  return { store, running: running.filter((j) => !['/e0', '/e1', '/e2', '/d'].includes(j.url) && j.key !== 'k3'), worker };
}

describe('a deployment made by real calls', () => {
  test('checks clean, and counts what it holds', async () => {
    const queues = new Queues(redis, uniquePrefix('check'));
    await liveState(queues);
    const report = await checkDeployment(queues);
    expect(lines(report)).toBe('');
    expect(report.ok).toBe(true);
    expect(report.counts).toMatchObject({ partitions: 1, waiting: 4, delayed: 3, dead: 2, done: 1, workers: 2, problems: 0 });
    // 3 runs left of the 8 claimed (e3, k1, k2), and the handed one.
    expect(report.counts.running).toBe(4);
  });
});

interface Deployment {
  queues: Queues;
  store: Store;
  k: Store['keys'];
  worker: string;
  running: Job[];
}

async function deployment(): Promise<Deployment> {
  const queues = new Queues(redis, uniquePrefix('check'));
  const { store, running, worker } = await liveState(queues);
  return { queues, store, k: store.keys, worker, running };
}

/** The id of a job whose index entry matches. */
async function idWhere(d: Deployment, where: RegExp): Promise<string> {
  const found = Object.entries(await redis.hgetall(d.k.jobs)).find(([, w]) => where.test(w));
  if (!found) throw new Error(`no job is ${where}`);
  return found[0];
}

const payloadOf = (id: string, level: 1 | 2, more = ''): string => `{"id":"${id}","at":1,"level":${level}${more},"method":"POST","url":"/x"}`;

/** The checker finds exactly these codes; with repair, it repairs them and a second check is clean. */
async function expectFound(d: Deployment, expected: ProblemCode[], repair: 'repairs' | 'leaves'): Promise<CheckReport> {
  const report = await checkDeployment(d.queues);
  expect({ codes: codes(report), ok: report.ok }).toEqual({ codes: [...expected].sort(), ok: false });
  for (const p of report.problems) expect(p.repairable).toBe(repair === 'repairs');
  if (repair === 'leaves') return report;
  const repaired = await checkDeployment(d.queues, { repair: true });
  expect({ left: lines(repaired), repaired: [...new Set(repaired.repaired.map((p) => p.code))].sort() }).toEqual({ left: '', repaired: [...expected].sort() });
  const after = await checkDeployment(d.queues);
  expect(lines(after)).toBe('');
  return report;
}

describe('a deployment that runs while it is checked', () => {
  test('gives no false alarm: every suspicion from the plain reads is dropped by the atomic confirmation', async () => {
    const queues = new Queues(redis, uniquePrefix('check'));
    const store = storesOf(queues)[0];
    let stop = false;
    let settled = 0;
    const produce = async (): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const policy = (['execute', 'last', 'discard'] as const)[i % 3];
        const extra = { key: `k${i % 20}`, ...(i % 7 === 0 && { delay: 0.05 }) };
        await queues.enqueue(asyncCall(`/live${i}`, (1 + (i % 2)) as 1 | 2, policy, extra), ADMISSION);
      }
    };
    const work = async (worker: string): Promise<void> => {
      while (!stop) {
        for (const [i, job] of (await claim(store, worker, 5)).entries()) {
          if (i % 4 === 1) await store.fail(worker, job.token, { retryDelayMs: 20 }, 50);
          else if (i % 4 === 2) await store.fail(worker, job.token, { status: 500, error: 'x' }, 50);
          else await store.finish(worker, [{ job, outcome: 'done', status: 200 }], 1000);
          settled += 1;
        }
        await store.promoteDue(50);
        await new Promise((r) => setImmediate(r));
      }
    };
    const running = [produce(), produce(), work('live-a'), work('live-b')];
    const reports: CheckReport[] = [];
    try {
      for (const until = Date.now() + 4000; Date.now() < until;) reports.push(await checkDeployment(queues, { repair: true }));
    } finally {
      stop = true;
      await Promise.all(running);
    }
    expect(settled).toBeGreaterThan(100);
    expect(reports.length).toBeGreaterThan(2);
    expect(reports.flatMap((r) => [...r.problems, ...r.repaired]).map((p) => `${p.code}: ${p.message}`)).toEqual([]);
    expect(reports.reduce((n, r) => n + r.counts.unconfirmed, 0)).toBeGreaterThan(0);
    process.stderr.write(
      `[check] ${reports.length} checks of a running deployment, ${settled} runs settled meanwhile, ${reports.reduce((n, r) => n + r.counts.unconfirmed, 0)} suspicions dropped by the confirmation\n`,
    );
    expect(lines(await checkDeployment(queues))).toBe('');
  });
});

describe('each problem is found, and repaired when that is safe', () => {
  test('INDEX_MISSING: a waiting `last` message and a running job without an entry; the repair writes where they are', async () => {
    const d = await deployment();
    const waiting = await idWhere(d, /^wL2:last\nk5$/);
    // The job the main worker claimed (another runs on the idle worker it was handed to).
    const running = await idWhere(d, new RegExp(`^r\\d+:\\d+:${d.worker}$`));
    // A message waiting in a list needs no entry: dropping the caller's id's one is no problem.
    await redis.hdel(d.k.jobs, waiting, running, 'w1-callers');
    const report = await expectFound(d, ['INDEX_MISSING'], 'repairs');
    expect(report.problems.flatMap((p) => p.ids).sort()).toEqual([waiting, running].sort());
    expect(await redis.hget(d.k.jobs, waiting)).toBe('wL2:last\nk5');
    expect(await redis.hget(d.k.jobs, 'w1-callers')).toBeNull();
    expect(await redis.hget(d.k.jobs, running)).toMatch(new RegExp(`^r\\d+:\\d+:${d.worker}$`));
  });

  test('beyond the most problems listed per partition, the rest are counted', async () => {
    const d = await deployment();
    await redis.hset(d.k.jobs, 'ghost1', 'x', 'ghost2', 'x', 'ghost3', 'x');
    const report = await checkDeployment(d.queues, { maxProblems: 2 });
    expect({ listed: report.problems.length, unlisted: report.counts.unlisted, ok: report.ok }).toEqual({ listed: 2, unlisted: 1, ok: false });
  });

  test('INDEX_WRONG: an entry pointing to another queue', async () => {
    const d = await deployment();
    await redis.hset(d.k.jobs, await idWhere(d, /^wL1:execute$/), 'wL2:discard');
    await expectFound(d, ['INDEX_WRONG'], 'repairs');
  });

  test('INDEX_DANGLING: entries of every form pointing to nothing, and one of no form', async () => {
    const d = await deployment();
    await redis.hset(
      d.k.jobs,
      'ghost1',
      'wL1:execute',
      'ghost2',
      'x',
      'ghost3',
      'd1:200:1:1:POST:/x',
      'ghost4',
      'r1:1:w-main',
      'ghost5',
      't5',
      'ghost6',
      'huh',
    );
    await redis.hset(d.k.jobs, 'ghost7', 'wL2:last\nk5');
    const report = await expectFound(d, ['INDEX_DANGLING'], 'repairs');
    expect(report.problems.flatMap((p) => p.ids).sort()).toEqual(['ghost1', 'ghost2', 'ghost3', 'ghost4', 'ghost5', 'ghost6', 'ghost7']);
  });

  test('JOB_IN_TWO_PLACES: a running job also waiting; a waiting job twice in its list', async () => {
    const d = await deployment();
    const run = d.running.find((j) => j.url === '/e3')!;
    await redis.lpush(d.k.queue(1, 'execute'), run.payload);
    let report = await expectFound(d, ['JOB_IN_TWO_PLACES'], 'leaves');
    expect(report.problems[0].ids).toEqual([run.id]);
    await redis.lrem(d.k.queue(1, 'execute'), 1, run.payload);
    const waiting = (await redis.lrange(d.k.queue(1, 'execute'), 0, 0))[0];
    await redis.rpush(d.k.queue(1, 'execute'), waiting);
    report = await expectFound(d, ['JOB_IN_TWO_PLACES'], 'leaves');
    expect(report.problems[0].message).toMatch(/L1:execute twice/);
  });

  test('DONE_UNINDEXED: a kept finished job without its entry', async () => {
    const d = await deployment();
    await redis.zadd(d.k.done, 1, 'nobody');
    await expectFound(d, ['DONE_UNINDEXED'], 'repairs');
  });

  test('PAYLOAD_UNREADABLE: not JSON, no routing prefix, a key with a lone surrogate (which cjson refuses)', async () => {
    const d = await deployment();
    await redis.lpush(d.k.queue(1, 'execute'), 'not json', '{"id":"x1","at":1}');
    const truncated = '{"id":"x2","at":1,"level":1,"method":"POST","url":';
    await redis.lpush(d.k.queue(1, 'execute'), truncated);
    await redis.hset(d.k.jobs, 'x2', 'wL1:execute');
    await redis.hset(d.k.queue(1, 'last'), 'ks', payloadOf('s1', 1, ',"policy":"last","key":"k\\ud800"'));
    await redis.lpush(d.k.order(1), 'ks');
    const report = await expectFound(d, ['PAYLOAD_UNREADABLE'], 'leaves');
    expect(report.problems).toHaveLength(4);
  });

  test("PAYLOAD_MISPLACED: a level-1 job in level 2's queue; a `last` message under another key's field", async () => {
    const d = await deployment();
    const waiting = (await redis.lrange(d.k.queue(1, 'execute'), 0, 0))[0];
    const id = decodeJob(0, waiting).id;
    await redis.lrem(d.k.queue(1, 'execute'), 1, waiting);
    await redis.lpush(d.k.queue(2, 'execute'), waiting);
    await redis.hset(d.k.jobs, id, 'wL2:execute');
    await expectFound(d, ['PAYLOAD_MISPLACED'], 'leaves');
    await redis.lrem(d.k.queue(2, 'execute'), 1, waiting);
    await redis.hdel(d.k.jobs, id);
    const k5 = (await redis.hget(d.k.queue(2, 'last'), 'k5'))!;
    await redis.hset(d.k.queue(2, 'last'), 'k5', k5.replace('"key":"k5"', '"key":"k6"'));
    // Its key's newest mark now points to a message of another key, too.
    expect(codes(await checkDeployment(d.queues))).toEqual(['NEWEST_DANGLING', 'PAYLOAD_MISPLACED']);
  });

  test('DEAD_ENTRY_MALFORMED', async () => {
    const d = await deployment();
    await redis.lpush(d.k.dead, 'garbage', '{"failedAt":1}', '{"failedAt":1,"attempts":1,"status":null,"error":"x","job":{"id":"u"}');
    const report = await expectFound(d, ['DEAD_ENTRY_MALFORMED'], 'leaves');
    expect(report.problems).toHaveLength(3);
  });

  test('an unreadable job in the dead list is where the scripts put it: counted, not a problem', async () => {
    const d = await deployment();
    await redis.lpush(d.k.dead, '{"failedAt":1,"attempts":1,"status":"500","error":"x","job":{}}');
    // One the scripts buried with its id (jobId reads it) may have an entry, which says dead.
    await redis.lpush(d.k.dead, '{"failedAt":1,"attempts":1,"status":null,"error":"x","job":{"id":"u1","level":7}}');
    await redis.hset(d.k.jobs, 'u1', 'x');
    const report = await checkDeployment(d.queues);
    expect(lines(report)).toBe('');
    expect(report.counts.deadUnreadable).toBe(2);
    // An entry left saying "running" (defect 2 of issue 14: `switchyard job` said running for good).
    await redis.hset(d.k.jobs, 'u1', 'r1:1:w-main');
    await expectFound(d, ['INDEX_WRONG'], 'repairs');
    expect(await redis.hget(d.k.jobs, 'u1')).toBe('x');
  });

  test('HELD_KEY_ORPHANED: a key held for a run nobody has; the repair releases it and puts its waiting message in line', async () => {
    const d = await deployment();
    await redis.hset(d.k.running, 'L1:ghost', '7');
    await redis.hset(d.k.queue(1, 'last'), 'ghost', payloadOf('g1', 1, ',"policy":"last","key":"ghost"'));
    await redis.hset(d.k.newest(1), 'ghost', 'g1');
    await redis.hset(d.k.jobs, 'g1', 'wL1:last\nghost');
    await expectFound(d, ['HELD_KEY_ORPHANED'], 'repairs');
    expect(await redis.hexists(d.k.running, 'L1:ghost')).toBe(0);
    expect(await redis.lrange(d.k.order(1), -1, -1)).toEqual(['ghost']);
  });

  test('HELD_KEY_ORPHANED and RUN_KEY_NOT_HELD: a run whose key is held under other bytes (left alone: the run is alive)', async () => {
    const d = await deployment();
    const k2 = d.running.find((j) => j.key === 'k2')!;
    await redis.hdel(d.k.running, 'L1:k2');
    await redis.hset(d.k.running, 'L1:k2\uFFFD', String(k2.token));
    await expectFound(d, ['HELD_KEY_ORPHANED', 'RUN_KEY_NOT_HELD'], 'leaves');
  });

  test('keys are compared byte for byte: a key decoded from an escape matches, other bytes of the same text do not', async () => {
    const queues = new Queues(redis, uniquePrefix('check'));
    const store = storesOf(queues)[0];
    await queues.enqueue(asyncCall('/e', 1, 'last', { key: 'k\u00e9' }), ADMISSION);
    const [run] = await claim(store, 'w', 1);
    expect(lines(await checkDeployment(queues))).toBe('');
    await redis.hdel(store.keys.running, 'L1:k\u00e9');
    await redis.hset(store.keys.running, Buffer.from('L1:k\xe9', 'latin1'), String(run.token));
    expect(codes(await checkDeployment(queues))).toEqual(['HELD_KEY_ORPHANED', 'RUN_KEY_NOT_HELD']);
  });

  test('RUN_KEY_NOT_HELD: a running `last` message whose key is not held', async () => {
    const d = await deployment();
    await redis.hdel(d.k.running, 'L1:k2');
    await expectFound(d, ['RUN_KEY_NOT_HELD'], 'leaves');
  });

  test('WORKER_GONE_WITH_RUNS: an unregistered worker is handed to recovery; an expired one is a problem only past the grace', async () => {
    const d = await deployment();
    await redis.zrem(d.k.workers, d.worker);
    let report = await checkDeployment(d.queues, { repair: true });
    expect(report.repaired.map((p) => p.code)).toEqual(['WORKER_GONE_WITH_RUNS']);
    // Registered again with a lease that ran out long ago: now recovery is overdue.
    report = await checkDeployment(d.queues);
    expect(codes(report)).toEqual(['WORKER_GONE_WITH_RUNS']);
    expect(report.problems[0].repairable).toBe(false);
    // Its lease ran out 5 s ago: within the grace, recovery is pending, not a problem.
    const [seconds] = await redis.time();
    await redis.zadd(d.k.workers, Number(seconds) * 1000 - 5000, d.worker);
    report = await checkDeployment(d.queues);
    expect({ problems: lines(report), pending: report.counts.recoveryPending }).toEqual({ problems: '', pending: 1 });
    expect(codes(await checkDeployment(d.queues, { recoveryGraceMs: 1000 }))).toEqual(['WORKER_GONE_WITH_RUNS']);
    // Recovery (what every worker runs) hands the runs back: clean.
    await d.store.requeueWorker(d.worker, 'expired', 5, 100);
    expect(lines(await checkDeployment(d.queues, { recoveryGraceMs: 1000 }))).toBe('');
  });

  test('INBOX_ORPHANED: a handed job missing from its worker hash', async () => {
    const d = await deployment();
    await redis.lpush(d.k.inbox('w-idle'), `1:${payloadOf('h1', 1)}`, 'xyz');
    const report = await expectFound(d, ['INBOX_ORPHANED'], 'leaves');
    expect(report.problems).toHaveLength(2);
  });

  test('LAST_NOT_IN_LINE: a waiting key out of its line; the repair puts it back', async () => {
    const d = await deployment();
    await redis.lrem(d.k.order(2), 0, 'k5');
    await expectFound(d, ['LAST_NOT_IN_LINE'], 'repairs');
    expect(await redis.lrange(d.k.order(2), 0, -1)).toEqual(['k5']);
  });

  test('LAST_IN_LINE_TWICE', async () => {
    const d = await deployment();
    await redis.lpush(d.k.order(2), 'k5');
    await expectFound(d, ['LAST_IN_LINE_TWICE'], 'repairs');
    expect(await redis.lrange(d.k.order(2), 0, -1)).toEqual(['k5']);
  });

  test('ORDER_WITHOUT_PAYLOAD', async () => {
    const d = await deployment();
    await redis.lpush(d.k.order(1), 'nokey');
    await expectFound(d, ['ORDER_WITHOUT_PAYLOAD'], 'repairs');
  });

  test('NEWEST_MISMATCH (left) and NEWEST_DANGLING (repaired): a mark pointing away from what waits', async () => {
    const d = await deployment();
    await redis.hset(d.k.newest(2), 'k5', 'other');
    expect(codes(await checkDeployment(d.queues))).toEqual(['NEWEST_DANGLING', 'NEWEST_MISMATCH']);
    const report = await checkDeployment(d.queues, { repair: true });
    expect({ repaired: report.repaired.map((p) => p.code), left: codes(report) }).toEqual({ repaired: ['NEWEST_DANGLING'], left: ['NEWEST_MISMATCH'] });
  });

  test('NEWEST_DANGLING: a mark for a key with nothing alive', async () => {
    const d = await deployment();
    await redis.hset(d.k.newest(1), 'gone', 'ghost');
    await expectFound(d, ['NEWEST_DANGLING'], 'repairs');
  });

  test('COUNTER_INVALID', async () => {
    const d = await deployment();
    await redis.hset(d.k.stats, 'L1:done', '-3', 'L2:queued', 'abc');
    const report = await expectFound(d, ['COUNTER_INVALID'], 'leaves');
    expect(report.problems).toHaveLength(2);
  });

  test('COUNTER_MISMATCH: the delayed counts; the repair recounts them', async () => {
    const d = await deployment();
    await redis.hincrby(d.k.stats, 'L1:delayed', 5);
    await expectFound(d, ['COUNTER_MISMATCH'], 'repairs');
    expect(await redis.hmget(d.k.stats, 'L1:delayed', 'L2:delayed')).toEqual(['2', '1']);
  });

  test('TOKEN_BEHIND: the run counter below tokens in use; the repair raises it', async () => {
    const d = await deployment();
    const max = Math.max(...d.running.map((j) => j.token));
    await redis.set(d.k.runs, '1');
    await expectFound(d, ['TOKEN_BEHIND'], 'repairs');
    expect(Number(await redis.get(d.k.runs))).toBeGreaterThanOrEqual(max);
  });

  test('TOKEN_INVALID', async () => {
    const d = await deployment();
    await redis.hset(d.k.workerJobs(d.worker), 'abc', payloadOf('t1', 1));
    await expectFound(d, ['TOKEN_INVALID'], 'leaves');
  });

  test('PARTITION_MISMATCH and PARTITION_STRAY_KEYS', async () => {
    const d = await deployment();
    const prefix = d.queues.prefix;
    await redis.set(deploymentKeys(prefix).partitions, '3');
    await expectFound(d, ['PARTITION_MISMATCH'], 'leaves');
    await redis.set(deploymentKeys(prefix).partitions, '1');
    await redis.lpush(`{${prefix}:1}:L1:execute`, payloadOf('p1', 1));
    await redis.set(`{${prefix}:0}:runs`, '5');
    const report = await expectFound(d, ['PARTITION_STRAY_KEYS'], 'leaves');
    expect(report.problems).toHaveLength(2);
  });
});

describe('several partitions', () => {
  test('clean after real calls in every partition; keys under unused tags are found', async () => {
    const prefix = uniquePrefix('check');
    const queues = new Queues(redis, prefix, 3);
    await queues.agreeOnPartitions();
    for (let i = 0; i < 12; i++)
      await queues.enqueue(asyncCall(`/p${i}`, (1 + (i % 2)) as 1 | 2, i % 3 === 0 ? 'last' : 'execute', { key: `k${i}` }), ADMISSION);
    for (const store of storesOf(queues)) {
      const [run] = await claim(store, 'w', 1);
      await store.finish('w', [{ job: run, outcome: 'done', status: 200 }]);
      await claim(store, 'w', 1);
    }
    let report = await checkDeployment(queues);
    expect(lines(report)).toBe('');
    expect(report.counts).toMatchObject({ partitions: 3, waiting: 6, running: 3, workers: 1 });
    await redis.lpush(`{${prefix}}:L1:execute`, payloadOf('stray', 1));
    await redis.hset(`{${prefix}:3}:jobs`, 'a', 'x');
    report = await checkDeployment(queues);
    expect(codes(report)).toEqual(['PARTITION_STRAY_KEYS']);
    expect(report.problems.map((p) => p.keys)).toEqual(expect.arrayContaining([[`{${prefix}}:L1:execute`], [`{${prefix}:3}:jobs`]]));
    await redis.del(deploymentKeys(prefix).partitions);
    expect(codes(await checkDeployment(queues))).toEqual(['PARTITION_MISMATCH', 'PARTITION_STRAY_KEYS']);
  });
});

describe('switchyard check (the CLI, from dist/)', () => {
  const run = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, 'check', ...args], { timeout: 20_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  test('exit 0 when clean, 1 with one line per problem, --json, --repair', async () => {
    const d = await deployment();
    const flags = ['--redis', server.url, '--prefix', d.queues.prefix];
    let out = await run(...flags);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toMatch(
      /^check: no problems \(1 partition\(s\), 4 waiting, 4 running, 3 delayed, 2 dead, 1 done kept, \d+ index entries, 2 live worker\(s\)\)\n$/,
    );

    await redis.hset(d.k.jobs, 'ghost', 'wL1:execute');
    await redis.hset(d.k.stats, 'L1:done', '-1');
    out = await run(...flags);
    expect(out.code).toBe(1);
    const printed = out.stdout.trim().split('\n');
    expect(printed).toEqual([
      expect.stringMatching(
        new RegExp(`^INDEX_DANGLING \\{${d.queues.prefix}\\}: index entry of job ghost says "wL1:execute", where no such job is\\. --repair drops the entry$`),
      ),
      expect.stringMatching(/^COUNTER_INVALID \{.*\}: .*"L1:done" is "-1"\. set it right with redis-cli/),
      expect.stringMatching(/^check: 2 problem\(s\) \(/),
    ]);

    out = await run(...flags, '--json');
    expect(out.code).toBe(1);
    const report = JSON.parse(out.stdout) as CheckReport;
    expect(report).toMatchObject({ ok: false, repaired: [], counts: { partitions: 1, problems: 2 } });
    expect(report.problems.map((p) => [p.code, p.partition, p.repairable])).toEqual([
      ['INDEX_DANGLING', 0, true],
      ['COUNTER_INVALID', 0, false],
    ]);
    expect(report.problems[0]).toMatchObject({ ids: ['ghost'], message: expect.any(String), remedy: expect.stringMatching(/^--repair/) });

    out = await run(...flags, '--repair');
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^COUNTER_INVALID .*\nrepaired INDEX_DANGLING .*\ncheck: 1 problem\(s\), 1 repaired \(/);
    await redis.hset(d.k.stats, 'L1:done', '1');
    out = await run(...flags, '--json');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: true, problems: [], repaired: [] });
  });

  test('bad flags and a Redis that does not answer: exit 2 with one line; listed in the usage', async () => {
    expect(await run('--nope')).toMatchObject({ code: 2, stderr: 'switchyard check: unknown flag --nope (see switchyard check --help)\n' });
    expect(await run('--recovery-grace', 'soon')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^switchyard check: --recovery-grace must be a duration/),
    });
    expect(await run('--redis', 'redis://127.0.0.1:1')).toMatchObject({ code: 2, stderr: 'switchyard check: redis at redis://127.0.0.1:1 is not answering\n' });
    const help = await run('--help');
    expect(help.stdout).toMatch(/--repair/);
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, '--help']);
    expect(stdout).toMatch(/\n {2}check {4}verifies every invariant/);
  });
});
