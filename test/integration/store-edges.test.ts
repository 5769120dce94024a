// Edges of the store found by an adversarial review (issue 14): each test drives the scripts
// the way a worker or a gateway does, against a real redis-server, and failed before the fix.
import Redis from 'ioredis';
import { decodeJob, type Job } from '../../shared/store/format/job';
import type { CallRequest } from '../../shared/call/params';
import { Queues } from '../../shared/store/queues';
import { Store, type SelectionOptions } from '../../shared/store/store';
import { startRedis, uniquePrefix } from '../helpers/redis';
import { asyncCall, suiteRedis } from '../helpers/store-calls';

const SELECTION: SelectionOptions = { weights: [3, 1], strict: false, capacity: 100 };
const LEASE = 60_000;
const DEAD_MAX = 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const suite = suiteRedis();
let redis: Redis;
let store: Store;
beforeAll(() => ({ redis } = suite));
beforeEach(() => {
  store = new Store(redis, uniquePrefix('edges'));
});

async function enqueue(call: CallRequest, limits = { capacity: 100, discardThreshold: 60 }): Promise<{ id: string; outcome: string }> {
  return store.enqueue(call, limits);
}

async function claim(workerId: string, n = 10, leaseMs = LEASE): Promise<Job[]> {
  await store.register(workerId, leaseMs);
  const claimed = await store.claim(workerId, n, n, SELECTION, leaseMs);
  if (claimed === 'lost') throw new Error(`${workerId} lost its lease`);
  return claimed.runs.map((run) => decodeJob(run.token, run.payload));
}

test('a run whose payload cannot be read is buried and still releases its last key; the newer message of the key runs', async () => {
  const k = store.keys;
  await enqueue(asyncCall('/k', 1, 'last', { key: 'K' }));
  const [run] = await claim('w1');
  // A newer message for K waits while K runs (parked).
  const newer = await enqueue(asyncCall('/k', 1, 'last', { key: 'K' }));
  // The stored run becomes unreadable to the scripts (as a payload of another version would be).
  await redis.hset(k.workerJobs('w1'), String(run.token), '{"not":"a job"}');
  expect(await store.fail('w1', run.token, { retryDelayMs: 10 }, DEAD_MAX)).toBe('dead');
  expect(await redis.hlen(k.running)).toBe(0);
  const [next] = await claim('w2');
  expect(next.id).toBe(newer.id);
});

test('a last key is stored byte-exactly as the payload carries it, whatever its characters', async () => {
  const keys = ['plain', 'quote " and \\ backslash', 'tab\tnew\nline\u0001', 'é中文🚀', '\u2028\u2029', 'ends with \\'];
  for (const key of keys) await enqueue(asyncCall('/u', 1, 'last', { key }));
  const jobs = await claim('w1', 50);
  expect(jobs.map((j) => j.key).sort()).toEqual([...keys].sort());
  for (const job of jobs) expect(await redis.hget(store.keys.running, `L1:${job.key}`)).toBe(String(job.token));
  await store.finish(
    'w1',
    jobs.map((job) => ({ job, outcome: 'done' as const, status: 200 })),
  );
  expect(await redis.hlen(store.keys.running)).toBe(0);
  expect(await redis.hlen(store.keys.newest(1))).toBe(0);
});

test('a dead last message requeued after a newer one of its key succeeded is not run (newest wins over the dead list)', async () => {
  const old = await enqueue(asyncCall('/v', 1, 'last', { key: 'K' }));
  const [v1] = await claim('w1');
  expect(await store.fail('w1', v1.token, { status: 500, error: 'boom' }, DEAD_MAX)).toBe('dead');
  await enqueue(asyncCall('/v', 1, 'last', { key: 'K' }));
  const [v2] = await claim('w1');
  await store.finish('w1', [{ job: v2, outcome: 'done', status: 200 }]);
  expect(await store.requeueDead(old.id)).toBe('superseded');
  expect(await store.requeueAllDead()).toBe(0);
  expect(await claim('w1')).toEqual([]);
  // A dead message with nothing newer is requeued, and the key's mark leaves with a purge.
  const lone = await enqueue(asyncCall('/v', 1, 'last', { key: 'L' }));
  const [l1] = await claim('w1');
  await store.fail('w1', l1.token, { status: 500, error: 'boom' }, DEAD_MAX);
  expect(await store.requeueDead(lone.id)).toBe('requeued');
  const [again] = await claim('w1');
  expect(again.id).toBe(lone.id);
  await store.fail('w1', again.token, { status: 500, error: 'boom' }, DEAD_MAX);
  expect(await redis.hget(store.keys.newest(1), 'L')).toBe(lone.id);
  await store.purgeDead();
  expect(await redis.hlen(store.keys.newest(1))).toBe(0);
  expect(await redis.hlen(store.keys.jobs)).toBe(0);
});

test('a delayed message counts in its level backlog: delay does not bypass the level-2 switch or the discard threshold', async () => {
  const limits = { capacity: 100, discardThreshold: 60 };
  const outcomes: string[] = [];
  for (let i = 0; i < 200; i++) outcomes.push((await enqueue(asyncCall(`/d${i}`, 2, 'execute', { delay: 2 }), limits)).outcome);
  expect(outcomes.filter((o) => o === 'queued').length).toBe(81);
  const discards: string[] = [];
  for (let i = 0; i < 100; i++) discards.push((await enqueue(asyncCall(`/x${i}`, 1, 'discard', { delay: 2 }), limits)).outcome);
  expect(discards.filter((o) => o === 'queued').length).toBe(60);
  expect(await redis.hget(store.keys.stats, 'L2:delayed')).toBe('81');
  // A retry counts too: a failed run of a level-2 job waits in the delayed set.
  await enqueue(asyncCall('/now', 2, 'execute'), { capacity: 1000, discardThreshold: 600 });
  const [now] = (await claim('w1')).filter((job) => job.url === '/now');
  expect(await store.fail('w1', now.token, { retryDelayMs: 60_000 }, DEAD_MAX)).toBe('retry');
  expect(await redis.hget(store.keys.stats, 'L2:delayed')).toBe('82');
  // Every entry of the set comes due: each leaves the count as it is promoted.
  await redis.zadd(store.keys.delayed, ...(await redis.zrange(store.keys.delayed, 0, -1)).flatMap((p) => [0, p]));
  expect(await store.promoteDue(DEAD_MAX, 1000)).toBe(142);
  expect(await redis.hget(store.keys.stats, 'L2:delayed')).toBe('0');
  expect(await redis.hget(store.keys.stats, 'L1:delayed')).toBe('0');
});

test("a dead worker's run of a job with its own attempts: 1 is buried after one run, 6 runs six times under --attempts 2", async () => {
  const one = await enqueue(asyncCall('/a', 1, 'execute', { attempts: 1 }));
  const six = await enqueue(asyncCall('/b', 1, 'execute', { attempts: 6 }));
  const runs: Record<string, number> = { [one.id]: 0, [six.id]: 0 };
  for (let round = 0; round < 8; round++) {
    const worker = `dying${round}`;
    const jobs = await claim(worker, 10, 40);
    for (const job of jobs) runs[job.id]++;
    await sleep(60);
    await store.requeueWorker(worker, 'expired', 2, DEAD_MAX);
  }
  expect(runs).toEqual({ [one.id]: 1, [six.id]: 6 });
  expect(await redis.llen(store.keys.dead)).toBe(2);
});

test('a caller id queues nothing twice while the job is known; a new id queues', async () => {
  const first = await enqueue(asyncCall('/p', 1, 'execute', { id: 'order-42' }));
  expect(first).toEqual({ id: 'order-42', outcome: 'queued', wakeIdle: false });
  expect((await enqueue(asyncCall('/p', 1, 'execute', { id: 'order-42' }))).outcome).toBe('duplicate');
  const [job] = await claim('w1');
  expect(job.id).toBe('order-42');
  expect((await enqueue(asyncCall('/p', 1, 'execute', { id: 'order-42' }))).outcome).toBe('duplicate');
  await store.finish('w1', [{ job, outcome: 'done', status: 200 }]);
  // Forgotten once done (no --keep-done): the id may be used again.
  expect((await enqueue(asyncCall('/p', 1, 'execute', { id: 'order-42' }))).outcome).toBe('queued');
  expect(await redis.llen(store.keys.queue(1, 'execute'))).toBe(1);
});

test('with several partitions a caller id always meets itself', async () => {
  const queues = new Queues(redis, uniquePrefix('parts'), 3);
  const limits = { capacity: 100, discardThreshold: 60 };
  const outcomes = [];
  for (let i = 0; i < 6; i++) outcomes.push((await queues.enqueue(asyncCall('/p', 1, 'execute', { id: 'same' }), limits)).outcome);
  expect(outcomes).toEqual(['queued', 'duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate']);
});

test('run tokens never go back when Redis restarts from an older snapshot', async () => {
  const own = await startRedis();
  const client = new Redis(own.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  try {
    let s = new Store(client, 'tokens');
    const seen: number[] = [];
    const runOnce = async (worker: string): Promise<void> => {
      await s.enqueue(asyncCall('/t', 1, 'last', { key: 'K' }), { capacity: 100, discardThreshold: 60 });
      await s.register(worker, LEASE);
      const claimed = await s.claim(worker, 1, 1, SELECTION, LEASE);
      if (claimed === 'lost') throw new Error('lost');
      const [run] = claimed.runs;
      seen.push(run.token);
      await s.finish(worker, [{ job: decodeJob(run.token, run.payload), outcome: 'done', status: 200 }]);
    };
    await runOnce('a');
    await client.save();
    await runOnce('b');
    await runOnce('c');
    await own.restart(); // loads the snapshot taken after the first run: b and c are lost
    for (let i = 0; i < 100 && client.status !== 'ready'; i++) await sleep(50);
    s = new Store(client, 'tokens');
    await runOnce('d');
    expect(seen).toHaveLength(4);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
    expect(Number.isSafeInteger(seen[3])).toBe(true);
  } finally {
    client.disconnect();
    await own.close();
  }
});

test('at maxmemory (noeviction) workers register, claim, settle and recover; enqueue is refused as out of memory', async () => {
  const own = await startRedis();
  const client = new Redis(own.url, { maxRetriesPerRequest: 0 });
  try {
    const s = new Store(client, 'full');
    const limits = { capacity: 1000, discardThreshold: 600 };
    for (let i = 0; i < 20; i++) await s.enqueue(asyncCall(`/f${i}`, 1, 'execute'), limits);
    const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
    await client.config('SET', 'maxmemory-policy', 'noeviction');
    await client.config('SET', 'maxmemory', String(used - 1024));
    await expect(s.enqueue(asyncCall('/more', 1, 'execute'), limits)).rejects.toThrow(/OOM/);
    expect(await s.register('w1', LEASE)).toBe(true);
    const claimed = await s.claim('w1', 5, 5, SELECTION, LEASE);
    if (claimed === 'lost') throw new Error('lost');
    expect(claimed.runs).toHaveLength(5);
    const jobs = claimed.runs.map((run) => decodeJob(run.token, run.payload));
    expect(await s.finish('w1', [{ job: jobs[0], outcome: 'done', status: 200 }])).toBe(1);
    expect(await s.fail('w1', jobs[1].token, { retryDelayMs: 0 }, DEAD_MAX)).toBe('retry');
    expect(await s.fail('w1', jobs[2].token, { status: 500, error: 'x' }, DEAD_MAX)).toBe('dead');
    expect(await s.promoteDue(DEAD_MAX)).toBe(1);
    expect(await s.renewLease('w1', LEASE)).toBe(true);
    expect(await s.requeueWorker('w1', 'shutdown', 5, DEAD_MAX)).toBe(2);
    expect(await s.pruneDone(0, 0)).toBe(0);
  } finally {
    client.disconnect();
    await own.close();
  }
});

test("requeuing the dead job with id '*' requeues nothing: an id is never a pattern", async () => {
  for (let i = 0; i < 3; i++) await enqueue(asyncCall(`/s${i}`, 1, 'execute'));
  const jobs = await claim('w1');
  for (const job of jobs) await store.fail('w1', job.token, { status: 500, error: 'x' }, DEAD_MAX);
  expect(await store.requeueDead('*')).toBe('unknown');
  expect(await redis.llen(store.keys.dead)).toBe(3);
  expect(await store.requeueAllDead()).toBe(3);
});
