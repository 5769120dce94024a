// The queue rules (levels, policies, weighted share, recovery, retries), one script call at a
// time, against a real Redis.
import Redis from 'ioredis';
import { AT_EPOCH_MS, atMs, decodeJob, type Job } from '../../shared/store/format/job';
import { parseParams, type CallRequest } from '../../shared/call/params';
import { Store, type DeliveredRun, type SelectionOptions } from '../../shared/store/store';
import { PartitionViews } from '../../shared/store/views';
import { uniquePrefix, type TestRedis } from '../helpers/redis';
import { asyncCall as callOf, PARAMS_LIMITS, suiteRedis } from '../helpers/store-calls';

const LIMITS = PARAMS_LIMITS;
const ADMISSION = { capacity: 100, discardThreshold: 60 };
const SELECTION: SelectionOptions = { weights: [3, 1], strict: false, capacity: 100 };
const LEASE = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** This file's calls carry their content before their queue_detail extras. */
const asyncCall = (
  url: string,
  level: 1 | 2,
  policy: 'execute' | 'last' | 'discard',
  content: unknown = null,
  detail: Record<string, unknown> = {},
): CallRequest => callOf(url, level, policy, detail, content);

const suite = suiteRedis();
let server: TestRedis;
let redis: Redis;
let store: Store;
beforeAll(() => ({ server, redis } = suite));
let registered: Set<string>;
beforeEach(() => {
  store = new Store(redis, uniquePrefix('store'));
  registered = new Set();
});

/** Claims as a live worker (registered on first use); the runs decoded as the worker does. */
async function claim(workerId: string, n: number, level2Room = n, selection = SELECTION, leaseMs = LEASE, idleMs?: number): Promise<Job[]> {
  if (!registered.has(workerId)) {
    expect(await store.register(workerId, leaseMs)).toBe(true);
    registered.add(workerId);
  }
  const runs = await store.claim(workerId, n, level2Room, selection, leaseMs, idleMs);
  if (runs === 'lost') throw new Error(`${workerId} lost its lease`);
  return runs.runs.map(decoded);
}

const decoded = (run: DeliveredRun): Job => decodeJob(run.token, run.payload);
const claimAll = (workerId: string, n = 1000): Promise<Job[]> => claim(workerId, n);
/** A worker whose lease runs out right after its claim. */
async function claimAndDie(workerId: string, n: number): Promise<Job[]> {
  const jobs = await claim(workerId, n, n, SELECTION, 50);
  await sleep(60);
  return jobs;
}
const payloadOf = (id: string, level: 1 | 2, extra = ''): string => `{"id":"${id}","at":0,"level":${level}${extra},"method":"POST","url":"/x"}`;

describe('enqueue', () => {
  test('a last message without a key coalesces on "METHOD url"', async () => {
    const put = (content: unknown): CallRequest =>
      parseParams(JSON.stringify({ url: '/users/42', method: 'put', reply: false, content, queue_detail: { level: 1, limit_policy: 'last' } }), LIMITS);
    expect((await store.enqueue(put({ v: 1 }), ADMISSION)).outcome).toBe('queued');
    expect((await store.enqueue(put({ v: 2 }), ADMISSION)).outcome).toBe('replaced');
    expect((await store.enqueue(asyncCall('/users/42', 1, 'last', { v: 3 }), ADMISSION)).outcome).toBe('queued'); // POST: another key
    expect((await redis.hkeys(store.keys.queue(1, 'last'))).sort()).toEqual(['POST /users/42', 'PUT /users/42']);
    expect(decodeJob(0, (await redis.hget(store.keys.queue(1, 'last'), 'PUT /users/42'))!).content).toEqual({ v: 2 });
  });

  test('an execute message waits in its list as JSON naming url, method and level', async () => {
    const { id, outcome } = await store.enqueue(asyncCall('/users/42?x=1', 2, 'execute', { name: 'Ada' }), ADMISSION);
    expect(outcome).toBe('queued');
    const [payload] = await redis.lrange(store.keys.queue(2, 'execute'), 0, -1);
    expect(JSON.parse(payload)).toMatchObject({ id, url: '/users/42?x=1', method: 'POST', level: 2, content: { name: 'Ada' } });
    // Routing fields first, the enqueue time stamped on Redis's clock.
    // (milliseconds since AT_EPOCH_MS: 11 digits until 2029).
    expect(payload).toMatch(new RegExp(`^\\{"id":"${id}","at":\\d{8,11},"level":2,"method":"POST"`));
    const [seconds] = await redis.time();
    expect(Math.abs(atMs(JSON.parse(payload).at) - Number(seconds) * 1000)).toBeLessThan(2000);
    expect(decodeJob(1, payload).at).toBe(atMs(JSON.parse(payload).at));
    expect(store.keys.queue(2, 'execute')).toMatch(/^\{store-[^}]+\}:L2:execute$/);
    expect(await redis.hget(store.keys.stats, 'L2:queued')).toBe('1');
  });

  test('execute messages are claimed in arrival order', async () => {
    for (let i = 0; i < 5; i++) await store.enqueue(asyncCall('/e', 1, 'execute', { i }), ADMISSION);
    const jobs = await claimAll('w1');
    expect(jobs.map((j) => (j.content as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
  });

  test('50 updates to one last key leave one waiting entry, which carries the newest body', async () => {
    const outcomes: string[] = [];
    for (let i = 1; i <= 50; i++) outcomes.push((await store.enqueue(asyncCall('/users/7', 1, 'last', { version: i }), ADMISSION)).outcome);
    expect(outcomes[0]).toBe('queued');
    expect(outcomes.slice(1).every((o) => o === 'replaced')).toBe(true);
    expect(await redis.hlen(store.keys.queue(1, 'last'))).toBe(1);
    expect(await redis.llen(store.keys.order(1))).toBe(1);
    const jobs = await claimAll('w1');
    expect(jobs).toHaveLength(1);
    expect(jobs[0].content).toEqual({ version: 50 });
    expect(jobs[0].key).toBe('POST /users/7');
  });

  test('a replaced last key keeps its original place in line', async () => {
    for (const k of ['a', 'b', 'c']) await store.enqueue(asyncCall(`/k/${k}`, 1, 'last', { v: 1 }), ADMISSION);
    await store.enqueue(asyncCall('/k/a', 1, 'last', { v: 2 }), ADMISSION);
    const jobs = await claimAll('w1');
    expect(jobs.map((j) => j.url)).toEqual(['/k/a', '/k/b', '/k/c']);
    expect(jobs[0].content).toEqual({ v: 2 });
  });

  test('an explicit coalescing key groups different urls', async () => {
    await store.enqueue(asyncCall('/one', 1, 'last', { v: 1 }, { key: 'user:9' }), ADMISSION);
    expect((await store.enqueue(asyncCall('/two', 1, 'last', { v: 2 }, { key: 'user:9' }), ADMISSION)).outcome).toBe('replaced');
    const jobs = await claimAll('w1');
    expect(jobs.map((j) => j.url)).toEqual(['/two']);
  });

  test('a message for a running key waits until that run ends, then runs (newest only)', async () => {
    await store.enqueue(asyncCall('/users/1', 1, 'last', { v: 1 }), ADMISSION);
    const [first] = await claimAll('w1');
    expect(first.content).toEqual({ v: 1 });
    expect((await store.enqueue(asyncCall('/users/1', 1, 'last', { v: 2 }), ADMISSION)).outcome).toBe('queued');
    expect((await store.enqueue(asyncCall('/users/1', 1, 'last', { v: 3 }), ADMISSION)).outcome).toBe('replaced');
    expect(await claimAll('w2')).toHaveLength(0);
    expect(await redis.hlen(store.keys.queue(1, 'last'))).toBe(1);
    await store.finish('w1', [{ job: first, outcome: 'done', status: 200 }]);
    const next = await claimAll('w2');
    expect(next.map((j) => j.content)).toEqual([{ v: 3 }]);
    await store.finish(
      'w2',
      next.map((job) => ({ job, outcome: 'done' as const, status: 200 })),
    );
    expect(await claimAll('w2')).toHaveLength(0);
    expect(await redis.hget(store.keys.stats, 'L1:done')).toBe('2');
  });

  test('level 2 turns inactive above 80% of capacity and active again under 60%, for every gateway', async () => {
    const secondGateway = new Store(new Redis(server.url), store.keys.tag.slice(1, -1));
    try {
      for (let i = 0; i < 81; i++) expect((await store.enqueue(asyncCall('/l2', 2, 'execute', { i }), ADMISSION)).outcome).toBe('queued');
      expect(await redis.get(store.keys.l2Active)).toBe('0');
      expect((await store.enqueue(asyncCall('/l2', 2, 'execute'), ADMISSION)).outcome).toBe('refused');
      expect((await secondGateway.enqueue(asyncCall('/l2', 2, 'last'), ADMISSION)).outcome).toBe('refused');
      // Level 1 is never refused.
      expect((await secondGateway.enqueue(asyncCall('/l1', 1, 'execute'), ADMISSION)).outcome).toBe('queued');
      await redis.del(store.keys.queue(1, 'execute'));
      // Drained to 60 waiting (not under 60%): still refusing.
      await claim('w1', 21);
      expect(await redis.llen(store.keys.queue(2, 'execute'))).toBe(60);
      expect((await secondGateway.enqueue(asyncCall('/l2', 2, 'execute'), ADMISSION)).outcome).toBe('refused');
      // One more claim takes it under 60%: the claim itself turns the switch back on.
      await claim('w1', 1);
      expect(await redis.get(store.keys.l2Active)).toBe('1');
      expect((await secondGateway.enqueue(asyncCall('/l2', 2, 'execute'), ADMISSION)).outcome).toBe('queued');
      expect(Number(await redis.hget(store.keys.stats, 'L2:refused'))).toBe(3);
    } finally {
      secondGateway.redis.disconnect();
    }
  });

  test('discard messages are dropped only when their level backlog is at or over the threshold', async () => {
    for (let i = 0; i < 59; i++) await store.enqueue(asyncCall('/x', 1, 'execute'), ADMISSION);
    expect((await store.enqueue(asyncCall('/d', 1, 'discard'), ADMISSION)).outcome).toBe('queued');
    expect((await store.enqueue(asyncCall('/d', 1, 'discard'), ADMISSION)).outcome).toBe('dropped');
    // Level 2's backlog is its own: empty, so accepted.
    expect((await store.enqueue(asyncCall('/d', 2, 'discard'), ADMISSION)).outcome).toBe('queued');
    expect(await redis.hget(store.keys.stats, 'L1:dropped')).toBe('1');
  });
});

describe('claim', () => {
  async function fill(level: 1 | 2, n: number): Promise<void> {
    const pipeline = redis.pipeline();
    for (let i = 0; i < n; i++) {
      pipeline.lpush(store.keys.queue(level, 'execute'), payloadOf(`L${level}-${i}`, level));
    }
    await pipeline.exec();
  }

  test('with both levels waiting, claims go 3:1 across all workers together', async () => {
    await fill(1, 600);
    await fill(2, 600);
    const levels: number[] = [];
    for (let i = 0; i < 400; i++) {
      const [job] = await claim(`w${i % 4}`, 1);
      levels.push(job.level);
    }
    expect(levels.filter((l) => l === 1).length).toBe(300);
    // And in every window of 4 consecutive claims.
    for (let i = 0; i < 400; i += 4) expect(levels.slice(i, i + 4).filter((l) => l === 1).length).toBe(3);
  });

  test('a batch claim keeps the ratio', async () => {
    await fill(1, 400);
    await fill(2, 400);
    const jobs = await claim('w1', 200);
    expect(jobs.filter((j) => j.level === 1).length).toBe(150);
  });

  test('an empty level gives its share away, and strict mode serves level 1 first', async () => {
    await fill(2, 10);
    expect((await claim('w1', 5)).map((j) => j.level)).toEqual([2, 2, 2, 2, 2]);
    await fill(1, 3);
    const strict = await claim('w1', 5, 5, { ...SELECTION, strict: true });
    expect(strict.map((j) => j.level)).toEqual([1, 1, 1, 2, 2]);
  });

  test('queues of one level take turns', async () => {
    for (let i = 0; i < 3; i++) {
      await store.enqueue(asyncCall(`/e${i}`, 1, 'execute'), ADMISSION);
      await store.enqueue(asyncCall(`/l${i}`, 1, 'last'), ADMISSION);
      await store.enqueue(asyncCall(`/d${i}`, 1, 'discard'), ADMISSION);
    }
    const jobs = await claimAll('w1');
    expect(jobs.map((j) => j.url)).toEqual(['/e0', '/l0', '/d0', '/e1', '/l1', '/d1', '/e2', '/l2', '/d2']);
  });

  test('no level-2 job is claimed beyond the room the worker gives it', async () => {
    await fill(2, 10);
    expect(await claim('w1', 5, 0)).toHaveLength(0);
    await fill(1, 2);
    const jobs = await claim('w1', 5, 1);
    expect(jobs.map((j) => j.level).sort()).toEqual([1, 1, 2]);
  });

  test('a claimed job is held by its worker, under a new run token, until finished; the lease is on Redis time', async () => {
    await store.enqueue(asyncCall('/x', 1, 'execute'), ADMISSION);
    const [job] = await claimAll('w1');
    expect(await redis.hget(store.keys.workerJobs('w1'), String(job.token))).toBe(job.payload);
    expect(job.token).toBe(Number(await redis.get(store.keys.runs)));
    const [seconds] = await redis.time();
    expect(Number(await redis.zscore(store.keys.workers, 'w1')) - Number(seconds) * 1000).toBeGreaterThan(LEASE - 2000);
    expect(await store.finish('w1', [{ job, outcome: 'done', status: 200 }])).toBe(1);
    expect(await redis.exists(store.keys.workerJobs('w1'))).toBe(0);
  });

  test('run tokens grow with every run, also across workers and for one key', async () => {
    const tokens: number[] = [];
    for (let i = 0; i < 3; i++) {
      await store.enqueue(asyncCall('/k', 1, 'last', { i }), ADMISSION);
      const [job] = await claimAll(`w${i}`);
      tokens.push(job.token);
      await store.finish(`w${i}`, [{ job, outcome: 'done', status: 200 }]);
    }
    expect(tokens).toEqual([...tokens].sort((a, b) => a - b));
    expect(new Set(tokens).size).toBe(3);
  });

  test('a worker whose lease ran out claims nothing and is not revived', async () => {
    await store.enqueue(asyncCall('/x', 1, 'execute'), ADMISSION);
    await claimAndDie('w1', 0);
    expect(await store.claim('w1', 5, 5, SELECTION, LEASE)).toBe('lost');
    expect(await store.renewLease('w1', LEASE)).toBe(false);
    expect(await store.register('w1', LEASE)).toBe(false); // an id lives once
    expect(await redis.llen(store.keys.queue(1, 'execute'))).toBe(1);
    expect(await store.claim('never-registered', 5, 5, SELECTION, LEASE)).toBe('lost');
  });
});

describe('hand-off to an idle worker', () => {
  let blocking: Redis;
  beforeAll(() => {
    blocking = new Redis(server.url);
  });
  afterAll(() => blocking.disconnect());

  test('an empty claim registers the worker idle; the next job goes straight to it, not to the queue', async () => {
    expect(await claimAll('w1')).toEqual([]);
    expect(await redis.zscore(store.keys.idle(1), 'w1')).not.toBeNull();
    expect(await redis.zscore(store.keys.idle(2), 'w1')).not.toBeNull();
    const { id, outcome } = await store.enqueue(asyncCall('/x', 2, 'execute', { n: 1 }), ADMISSION);
    expect(outcome).toBe('queued');
    expect(await redis.llen(store.keys.queue(2, 'execute'))).toBe(0);
    expect(await redis.hlen(store.keys.workerJobs('w1'))).toBe(1); // held, as if claimed: recovery covers it
    expect(await redis.zscore(store.keys.idle(1), 'w1')).toBeNull(); // one hand-off per idle spell
    expect(await redis.zscore(store.keys.idle(2), 'w1')).toBeNull();
    expect(await redis.hget(store.keys.stats, 'L2:queued')).toBe('1');
    const delivered = await store.waitForWork(blocking, 'w1', [1, 2], 1);
    const handed = decoded(delivered!);
    expect(handed).toMatchObject({ id, level: 2, content: { n: 1 } });
    expect(await redis.hget(store.keys.workerJobs('w1'), String(handed.token))).toBe(handed.payload); // held, as if claimed
    // The next message finds no idle worker and waits in its queue.
    await store.enqueue(asyncCall('/x', 2, 'execute', { n: 2 }), ADMISSION);
    expect(await redis.llen(store.keys.queue(2, 'execute'))).toBe(1);
    expect(await store.finish('w1', [{ job: handed!, outcome: 'done', status: 200 }])).toBe(1);
  });

  test('a handed job not yet waited for is delivered by the next claim, once', async () => {
    await claimAll('w1');
    const { id } = await store.enqueue(asyncCall('/x', 1, 'execute'), ADMISSION);
    expect((await claimAll('w1')).map((j) => j.id)).toEqual([id]);
    expect(await redis.exists(store.keys.inbox('w1'))).toBe(0);
    expect(await claimAll('w1')).toEqual([]);
  });

  test('a handed level-2 job delivered by a claim uses the room the worker gives level 2', async () => {
    await claimAll('w1');
    const { id } = await store.enqueue(asyncCall('/x', 2, 'execute'), ADMISSION);
    for (let i = 0; i < 3; i++) await redis.lpush(store.keys.queue(2, 'execute'), payloadOf(`L2-${i}`, 2));
    const jobs = await claim('w1', 5, 1);
    expect(jobs.map((j) => j.id)).toEqual([id]);
  });

  test('no hand-off to a worker without room for the level, or whose idle registration went stale', async () => {
    await claim('w1', 5, 0); // level 2 has no room in w1
    expect(await redis.zscore(store.keys.idle(2), 'w1')).toBeNull();
    await store.enqueue(asyncCall('/x', 2, 'execute'), ADMISSION);
    expect(await redis.llen(store.keys.queue(2, 'execute'))).toBe(1);

    // Registered idle, then died: its registration is not renewed (the live worker's empty
    // claim renews it at least once a second).
    await redis.zrem(store.keys.idle(1), 'w1');
    await claim('gone', 5, 0, SELECTION, LEASE, 30);
    await new Promise((r) => setTimeout(r, 60));
    await store.enqueue(asyncCall('/y', 1, 'execute'), ADMISSION);
    expect(await redis.llen(store.keys.queue(1, 'execute'))).toBe(1);
    expect(await redis.exists(store.keys.workerJobs('gone'))).toBe(0);
    await claimAll('w3');
    await claimAll('w4'); // an empty claim also clears stale registrations
    expect(await redis.zscore(store.keys.idle(1), 'gone')).toBeNull();
  });

  test('no hand-off while jobs of that level wait: order in the queue holds', async () => {
    const { id: first } = await store.enqueue(asyncCall('/x', 1, 'execute', { i: 1 }), ADMISSION);
    await claimAll('w2'); // w2 takes it ...
    await claimAll('w1'); // ... w1 finds nothing and is idle
    await store.requeueWorker('w2', 'shutdown', 5, 100); // the first job is back in line
    const { id: second } = await store.enqueue(asyncCall('/x', 1, 'execute', { i: 2 }), ADMISSION);
    expect(await redis.llen(store.keys.queue(1, 'execute'))).toBe(2);
    expect((await claimAll('w1')).map((j) => j.id)).toEqual([first, second]);
  });

  test('a last message handed off marks its key running: an update waits for that run', async () => {
    await claimAll('w1');
    await store.enqueue(asyncCall('/k', 1, 'last', { v: 1 }), ADMISSION);
    const handed = decoded((await store.waitForWork(blocking, 'w1', [1, 2], 1))!);
    expect(handed).toMatchObject({ policy: 'last', content: { v: 1 } });
    await store.enqueue(asyncCall('/k', 1, 'last', { v: 2 }), ADMISSION);
    expect(await claimAll('w2')).toEqual([]); // parked while its key runs
    await store.finish('w1', [{ job: handed, outcome: 'done', status: 200 }]);
    expect((await claimAll('w2')).map((j) => j.content)).toEqual([{ v: 2 }]);
  });

  test('a handed job its worker never received goes back with the rest (death, shutdown, lost reply)', async () => {
    for (const mode of ['expired', 'shutdown', 'orphans'] as const) {
      const worker = `w1-${mode}`;
      await claim(worker, 5, 5, SELECTION, mode === 'expired' ? 300 : LEASE);
      const { id } = await store.enqueue(asyncCall('/x', 1, 'execute', { mode }), ADMISSION);
      expect(await redis.llen(store.keys.inbox(worker))).toBe(1);
      if (mode === 'expired') {
        expect(await store.requeueWorker(worker, mode, 5, 100, [])).toBe(0); // refused while the lease holds
        await sleep(350);
      }
      expect(await store.requeueWorker(worker, mode, 5, 100, [])).toBe(1);
      expect(await redis.exists(store.keys.inbox(worker))).toBe(0); // never delivered as well
      expect(await redis.zscore(store.keys.idle(1), worker)).toBeNull();
      const [job] = await claimAll('w2');
      expect(job).toMatchObject({ id, attempt: mode === 'expired' ? 2 : 1 });
      await store.finish('w2', [{ job, outcome: 'done', status: 200 }]);
    }
  });
});

describe('recovery and retries', () => {
  test("a dead worker's jobs go back to the front of their queues with attempt + 1", async () => {
    for (let i = 0; i < 3; i++) await store.enqueue(asyncCall('/x', 1, 'execute', { i }), ADMISSION);
    await store.enqueue(asyncCall('/k', 1, 'last', { v: 1 }), ADMISSION);
    const held = await claimAndDie('dead-worker', 2);
    expect(await store.expiredWorkers()).toEqual(['dead-worker']);
    expect(await store.requeueWorker('dead-worker', 'expired', 5, 100)).toBe(2);
    const again = await claimAll('w2');
    const recovered = again.filter((j) => held.some((h) => h.id === j.id));
    expect(recovered).toHaveLength(2);
    expect(recovered.every((j) => j.attempt === 2)).toBe(true);
    expect(again[0].id).toBe(held[0].id);
    // The finish of the presumed-dead worker counts nothing: those jobs are someone else's now.
    expect(
      await store.finish(
        'dead-worker',
        held.map((job) => ({ job, outcome: 'done' as const, status: 200 })),
      ),
    ).toBe('lost');
    expect(await redis.hget(store.keys.stats, 'L1:done')).toBeNull();
  });

  test('jobs recorded for a live worker that it does not hold (a lost claim reply) go back, the rest stay', async () => {
    for (let i = 0; i < 3; i++) await store.enqueue(asyncCall('/x', 1, 'execute', { i }), ADMISSION);
    const held = await claimAll('w1');
    expect(await store.requeueWorker('w1', 'orphans', 5, 100, [held[0].token])).toBe(2);
    expect(await redis.hkeys(store.keys.workerJobs('w1'))).toEqual([String(held[0].token)]);
    expect(await redis.zscore(store.keys.workers, 'w1')).not.toBeNull();
    const again = await claimAll('w2');
    // The jobs one worker held ran side by side: the order they go back in is not specified.
    expect(again.map((j) => [j.id, j.attempt]).sort()).toEqual(
      [
        [held[1].id, 1],
        [held[2].id, 1],
      ].sort(),
    );
  });

  test('a job whose attempts are used up by lost leases is buried', async () => {
    await store.enqueue(asyncCall('/x', 1, 'execute'), ADMISSION);
    await claimAndDie('w1', 1);
    await store.requeueWorker('w1', 'expired', 1, 100);
    const [entry] = await redis.lrange(store.keys.dead, 0, -1);
    expect(JSON.parse(entry)).toMatchObject({ attempts: 1, error: expect.stringContaining('lease'), job: { url: '/x' } });
  });

  test('a retry waits in the delayed set and comes back when due (Redis time); a last retry loses to a newer message', async () => {
    await store.enqueue(asyncCall('/x', 1, 'execute'), ADMISSION);
    await store.enqueue(asyncCall('/k', 1, 'last', { v: 1 }), ADMISSION);
    const [x, k] = await claimAll('w1');
    expect(await store.fail('w1', x.token, { retryDelayMs: 300 }, 100)).toBe('retry');
    expect(await store.fail('w1', k.token, { retryDelayMs: 300 }, 100)).toBe('retry');
    await store.enqueue(asyncCall('/k', 1, 'last', { v: 2 }), ADMISSION);
    expect(await store.promoteDue(100)).toBe(0);
    await sleep(350);
    expect(await store.promoteDue(100)).toBe(1); // /x moves; /k's retry loses to v2 (superseded)
    const jobs = await claimAll('w1');
    expect(jobs.map((j) => [j.url, j.attempt, j.content]).sort()).toEqual([
      ['/k', 1, { v: 2 }],
      ['/x', 2, null],
    ]);
    expect(await redis.hget(store.keys.stats, 'L1:superseded')).toBe('1');
  });

  test("an older last message's retry never runs after a newer one of its key finished", async () => {
    await store.enqueue(asyncCall('/k', 1, 'last', { v: 1 }), ADMISSION);
    const [v1] = await claimAll('w1');
    expect(await store.fail('w1', v1.token, { retryDelayMs: 200 }, 100)).toBe('retry');
    await store.enqueue(asyncCall('/k', 1, 'last', { v: 2 }), ADMISSION);
    const [v2] = await claimAll('w2');
    expect(v2.content).toEqual({ v: 2 });
    expect(await store.finish('w2', [{ job: v2, outcome: 'done', status: 200 }])).toBe(1);
    expect(await redis.hexists(store.keys.newest(1), 'POST /k')).toBe(0); // nothing of the key alive
    await sleep(250);
    await store.promoteDue(100);
    expect(await claimAll('w3')).toEqual([]);
    expect(await redis.hget(store.keys.stats, 'L1:superseded')).toBe('1');
  });

  test('the dead-letter list is capped and trimmed entries are counted', async () => {
    for (let i = 0; i < 5; i++) {
      await store.enqueue(asyncCall('/x', 1, 'execute', { i }), ADMISSION);
      const [job] = await claimAll('w1');
      expect(await store.fail('w1', job.token, { status: 500, error: 'no' }, 3)).toBe('dead');
    }
    expect(await redis.llen(store.keys.dead)).toBe(3);
    expect(await redis.hget(store.keys.stats, 'dead:trimmed')).toBe('2');
    expect(await redis.hget(store.keys.stats, 'L1:dead')).toBe('5');
    const entries = (await new PartitionViews(redis, store.keys).listDead(10)).map(
      (e) => JSON.parse(e) as { status: string; error: string; job: { content: { i: number } } },
    );
    expect(entries.map((e) => e.job.content.i)).toEqual([4, 3, 2]);
    expect(entries[0]).toMatchObject({ status: '500', error: 'no' });
    expect(await store.requeueAllDead()).toBe(3);
    expect(await redis.llen(store.keys.dead)).toBe(0);
    const requeued = await claimAll('w1');
    expect(requeued.map((j) => [(j.content as { i: number }).i, j.attempt])).toEqual([
      [2, 1],
      [3, 1],
      [4, 1],
    ]);
  });

  test('requeue of one dead job: found once, then unknown', async () => {
    await store.enqueue(asyncCall('/x', 1, 'execute'), ADMISSION);
    const [job] = await claimAll('w1');
    await store.fail('w1', job.token, { status: 404, error: 'Not Found' }, 10);
    expect(await store.requeueDead(job.id)).toBe('requeued');
    expect(await store.requeueDead(job.id)).toBe('unknown');
    expect(await store.requeueDead('bogus')).toBe('unknown');
  });
});

describe('payloads no script can break', () => {
  // Nested past what Redis's Lua cjson decodes (1,000 levels): the gateway refuses such
  // content, but the store must not depend on it.
  const deep = '['.repeat(1200) + ']'.repeat(1200);
  const poison = (id: string): string => `{"id":"${id}","at":0,"level":1,"method":"POST","url":"/p","content":${deep}}`;

  test('a dead worker holding a deeply nested payload: every job back once, the poison one too, and the pass is not repeated', async () => {
    for (let i = 0; i < 3; i++) await store.enqueue(asyncCall('/x', 1, 'execute', { i }), ADMISSION);
    await redis.lpush(store.keys.queue(1, 'execute'), poison('poison1'));
    const held = await claimAndDie('w1', 4);
    expect(held).toHaveLength(4);
    expect(await store.requeueWorker('w1', 'expired', 5, 100)).toBe(4);
    expect(await store.requeueWorker('w1', 'expired', 5, 100)).toBe(0);
    expect(await store.expiredWorkers()).toEqual([]);
    const again = await claimAll('w2');
    expect(again.map((j) => j.id).sort()).toEqual(held.map((j) => j.id).sort());
    expect(await redis.hget(store.keys.stats, 'L1:recovered')).toBe('4');
  });

  test('an unreadable payload goes to the dead list; the jobs beside it are recovered', async () => {
    await store.enqueue(asyncCall('/x', 1, 'execute'), ADMISSION);
    await redis.lpush(store.keys.queue(1, 'execute'), '{"level":1,"this":"is not ours"}');
    // Claimed like any payload at the tail of its list (the worker would find it unreadable).
    await store.register('w1', 50);
    expect(await store.claim('w1', 2, 2, SELECTION, 50)).toMatchObject({ runs: [{}, {}] });
    await sleep(60);
    expect(await store.requeueWorker('w1', 'expired', 5, 100)).toBe(1);
    const [entry] = await new PartitionViews(redis, store.keys).listDead(10);
    expect(JSON.parse(entry)).toMatchObject({ error: expect.stringContaining('unreadable'), job: { this: 'is not ours' } });
    expect(await redis.hget(store.keys.stats, 'dead:unreadable')).toBe('1');
  });

  test('a poison retry is promoted, not lost; poison dead entries requeue once each', async () => {
    await redis.lpush(store.keys.queue(1, 'execute'), poison('poison2'));
    const [job] = await claimAll('w1');
    expect(await store.fail('w1', job.token, { retryDelayMs: 1 }, 100)).toBe('retry');
    await sleep(10);
    expect(await store.promoteDue(100)).toBe(1);
    const [again] = await claimAll('w1');
    expect(again).toMatchObject({ id: 'poison2', attempt: 2 });
    expect(await store.fail('w1', again.token, { status: 500, error: 'still no' }, 100)).toBe('dead');
    await redis.lpush(store.keys.dead, 'not an entry at all');
    for (let i = 0; i < 3; i++) await store.requeueAllDead();
    expect(await redis.llen(store.keys.queue(1, 'execute'))).toBe(1);
    expect(await redis.lrange(store.keys.dead, 0, -1)).toEqual(['not an entry at all']);
    expect(await store.requeueDead('poison2')).toBe('unknown');
  });
});

test('decodeJob reads what the gateway writes', () => {
  const job = decodeJob(
    7,
    '{"attempt":3,"id":"a1","at":5,"level":2,"policy":"last","key":"k","timeout":2000,"method":"PUT","url":"/u","content":{"list":[],"n":12345678901234567}}',
  );
  expect(job).toMatchObject({
    attempt: 3,
    id: 'a1',
    at: AT_EPOCH_MS + 5,
    level: 2,
    policy: 'last',
    key: 'k',
    timeoutMs: 2000,
    token: 7,
    content: { list: [] },
  });
});
