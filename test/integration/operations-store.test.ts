// The operator's side of the store, one script call at a time against a real Redis: where a
// job is in every state, pause and resume, dedicated workers, per-call job options, delete,
// and how long finished jobs are kept. The lookup index must not outlive the jobs it points to.
import Redis from 'ioredis';
import type { CallRequest } from '../../shared/call/params';
import { checkDeployment } from '../../shared/store/check';
import { INDEX_KEEPER } from '../../shared/store/format/index-entry';
import { decodeJob, type Job } from '../../shared/store/format/job';
import { Queues } from '../../shared/store/queues';
import { partitionStores } from '../../shared/store/queues';
import { type SelectionOptions } from '../../shared/store/store';
import { uniquePrefix } from '../helpers/redis';
import { asyncCall, suiteRedis } from '../helpers/store-calls';

const ADMISSION = { capacity: 1000, discardThreshold: 600 };
const SELECTION: SelectionOptions = { weights: [3, 1], strict: false, capacity: 1000 };
const LEASE = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const suite = suiteRedis();
let redis: Redis;
let queues: Queues;
beforeAll(() => ({ redis } = suite));
beforeEach(() => {
  queues = new Queues(redis, uniquePrefix('ops'));
});

async function claim(worker: string, n = 100, options: { level2Room?: number; takesLevel1?: boolean } = {}): Promise<Job[]> {
  if (!(await redis.zscore(queues.keysOf(0).workers, worker))) await queues.register(worker, LEASE, 0);
  const claimed = await queues.claim(0, worker, n, options.level2Room ?? n, SELECTION, LEASE, undefined, options.takesLevel1 ?? true);
  if (claimed === 'lost') throw new Error('lost');
  return claimed.runs.map((r) => decodeJob(r.token, r.payload));
}
const enqueue = async (call: CallRequest): Promise<string> => (await queues.enqueue(call, ADMISSION)).id;
/** The ids the lookup index holds (not its one field that is not a job). */
const indexed = async (): Promise<string[]> => (await redis.hkeys(queues.keysOf(0).jobs)).filter((id) => id !== INDEX_KEEPER);

describe('job lookup', () => {
  test('in every state, with the call it carries; unknown once gone', async () => {
    const [a, b, c] = [
      await enqueue(asyncCall('/a', 1, 'execute')),
      await enqueue(asyncCall('/b', 1, 'execute')),
      await enqueue(asyncCall('/c', 2, 'last', { key: 'k' })),
    ];
    expect(await queues.lookup(a)).toMatchObject({ state: 'waiting', queue: 'L1:execute', position: 0, url: '/a', method: 'POST', attempt: 1, level: 1 });
    expect(await queues.lookup(b)).toMatchObject({ state: 'waiting', position: 1 });
    expect(await queues.lookup(c)).toMatchObject({ state: 'waiting', queue: 'L2:last', key: 'k', position: 0 });
    expect((await queues.lookup(a)).enqueuedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const [running] = await claim('w1', 1);
    expect(running.id).toBe(a);
    const view = await queues.lookup(a);
    expect(view).toMatchObject({ state: 'running', worker: 'w1', fence: running.token, url: '/a' });
    expect(Date.parse(view.leaseUntil!) - Date.parse(view.since!)).toBeGreaterThan(LEASE - 5000);

    expect(await queues.fail(0, 'w1', running.token, { retryDelayMs: 60_000 }, 100)).toBe('retry');
    expect(await queues.lookup(a)).toMatchObject({ state: 'retry', attempt: 2, url: '/a' });
    expect(Date.parse((await queues.lookup(a)).due!)).toBeGreaterThan(Date.now() + 50_000);

    const [second] = await claim('w1', 1);
    await queues.fail(0, 'w1', second.token, { status: 503, error: 'down for maintenance' }, 100);
    expect(await queues.lookup(b)).toMatchObject({ state: 'dead', status: '503', error: 'down for maintenance', attempt: 1, url: '/b' });
    // A dead job still says when it was enqueued.
    expect(Date.parse((await queues.lookup(b)).enqueuedAt!)).toBeGreaterThan(Date.now() - 60_000);

    const [third] = await claim('w1', 1);
    await queues.finish(0, 'w1', [{ job: third, outcome: 'done', status: 204 }], 60_000);
    expect(await queues.lookup(c)).toMatchObject({ state: 'done', status: '204', url: '/c', method: 'POST', attempt: 1 });
    expect(await queues.lookup('nope')).toEqual({ id: 'nope', state: 'unknown' });
  });

  test('without --keep-done a finished job is forgotten; a replaced or superseded message too: the index holds only live jobs', async () => {
    for (let v = 0; v < 5; v++) await enqueue(asyncCall('/k', 1, 'last', { key: 'k' }, { v }));
    const ids = [await enqueue(asyncCall('/x', 1, 'execute')), await enqueue(asyncCall('/y', 2, 'discard'))];
    // The newest `last` message only (messages waiting in a list have no entry).
    expect(await indexed()).toHaveLength(1);
    const jobs = await claim('w1');
    await queues.finish(
      0,
      'w1',
      jobs.map((job) => ({ job, outcome: 'done' as const, status: 200 })),
    );
    expect(await indexed()).toEqual([]);
    expect(await queues.lookup(ids[0])).toMatchObject({ state: 'unknown' });
  });

  test('finished jobs are pruned by age and by count', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await enqueue(asyncCall('/d', 1, 'execute')));
    const jobs = await claim('w1');
    await queues.finish(
      0,
      'w1',
      jobs.slice(0, 2).map((job) => ({ job, outcome: 'done' as const, status: 200 })),
      200,
    );
    await sleep(250);
    await queues.finish(
      0,
      'w1',
      jobs.slice(2).map((job) => ({ job, outcome: 'done' as const, status: 200 })),
      200,
    );
    // Acknowledging prunes nothing: the workers' chore does (pruneDone).
    expect(await redis.zcard(queues.keysOf(0).done)).toBe(5);
    // The first two are past their age; of the last three, the cap keeps two.
    expect(await queues.pruneDone(0, 200, 2)).toBe(3);
    const states = await Promise.all(ids.map(async (id) => (await queues.lookup(id)).state));
    expect(states).toEqual(['unknown', 'unknown', 'unknown', 'done', 'done']);
    expect(await redis.zcard(queues.keysOf(0).done)).toBe(2);
    // The two kept, and the field that keeps the index a hashtable.
    expect(await indexed()).toHaveLength(2);
    expect(await redis.object('ENCODING', queues.keysOf(0).jobs)).toBe('hashtable');
    expect(await redis.hexists(queues.keysOf(0).jobs, INDEX_KEEPER)).toBe(1);
    // A worker that keeps none forgets the rest: nothing stays after --keep-done is turned off.
    expect(await queues.pruneDone(0, 0, 0)).toBe(2);
    expect(await redis.zcard(queues.keysOf(0).done)).toBe(0);
    expect(await indexed()).toEqual([]);
  });

  test('pruning goes in batches: thousands of kept jobs past their age all leave, none twice', async () => {
    const k = queues.keysOf(0);
    const old = Date.now() - 60_000;
    const members: Array<string | number> = [];
    for (let i = 0; i < 2500; i++) members.push(old, `old${i}`);
    await redis.zadd(k.done, ...members);
    for (let i = 0; i < 2500; i++) await redis.hset(k.jobs, `old${i}`, `d${old}:200:1:${old}:GET:/x`);
    expect(await queues.pruneDone(0, 1000, 10_000, 1000)).toBe(1000);
    expect(await queues.pruneDone(0, 1000, 10_000, 1000)).toBe(1000);
    expect(await queues.pruneDone(0, 1000, 10_000, 1000)).toBe(500);
    expect(await redis.zcard(k.done)).toBe(0);
    expect(await indexed()).toEqual([]);
  });
});

describe('steering', () => {
  test('a paused level accepts calls but is not claimed; the other level is; resume lets it run', async () => {
    expect(await queues.setPaused(2, true)).toBe(true);
    expect(await queues.setPaused(2, true)).toBe(false);
    const l2 = await enqueue(asyncCall('/two', 2, 'execute'));
    const l1 = await enqueue(asyncCall('/one', 1, 'execute'));
    expect((await claim('w1')).map((j) => j.id)).toEqual([l1]);
    expect(await claim('w1')).toEqual([]);
    expect((await queues.stats()).total.paused).toEqual({ 1: false, 2: true });
    expect(await queues.setPaused(2, false)).toBe(true);
    expect(await redis.llen(queues.keysOf(0).wake(2))).toBe(1);
    expect((await claim('w1')).map((j) => j.id)).toEqual([l2]);
  });

  test('no job of a paused level is handed to an idle worker', async () => {
    await queues.setPaused(1, true);
    expect(await claim('idle')).toEqual([]);
    await enqueue(asyncCall('/x', 1, 'execute'));
    expect(await redis.llen(queues.keysOf(0).queue(1, 'execute'))).toBe(1);
    expect(await redis.exists(queues.keysOf(0).inbox('idle'))).toBe(0);
  });

  test('a worker dedicated to level 2 takes no level-1 job, and one dedicated to level 1 no level-2 job', async () => {
    await enqueue(asyncCall('/one', 1, 'execute'));
    await enqueue(asyncCall('/two', 2, 'execute'));
    expect((await claim('only2', 10, { takesLevel1: false })).map((j) => j.level)).toEqual([2]);
    await enqueue(asyncCall('/two', 2, 'execute'));
    expect((await claim('only1', 10, { level2Room: 0 })).map((j) => j.level)).toEqual([1]);
  });

  test('the next waiting messages of a level, next first', async () => {
    for (const url of ['/1', '/2', '/3']) await enqueue(asyncCall(url, 1, 'execute'));
    await enqueue(asyncCall('/k', 1, 'last', { key: 'k' }));
    const next = await queues.peek(1, ['execute', 'last'], 2);
    expect(next.map((e) => [e.policy, JSON.parse(e.payload).url])).toEqual([
      ['execute', '/1'],
      ['execute', '/2'],
      ['last', '/k'],
    ]);
  });

  test('delete removes a waiting or retrying job, not a running one', async () => {
    const [e, l, r] = [
      await enqueue(asyncCall('/e', 1, 'execute')),
      await enqueue(asyncCall('/l', 1, 'last', { key: 'l' })),
      await enqueue(asyncCall('/r', 2, 'execute')),
    ];
    expect(await queues.deleteJob(e)).toBe('deleted');
    expect(await queues.deleteJob(l)).toBe('deleted');
    expect(await redis.hlen(queues.keysOf(0).queue(1, 'last'))).toBe(0);
    expect(await redis.llen(queues.keysOf(0).order(1))).toBe(0);
    const [running] = await claim('w1');
    expect(running.id).toBe(r);
    expect(await queues.deleteJob(r)).toBe('running');
    await queues.fail(0, 'w1', running.token, { retryDelayMs: 60_000 }, 100);
    expect(await queues.deleteJob(r)).toBe('deleted');
    expect(await redis.zcard(queues.keysOf(0).delayed)).toBe(0);
    expect(await queues.deleteJob(r)).toBe('unknown');
    expect(await indexed()).toEqual([]);
  });
});

describe("messages waiting in a list: no index entry for the gateway's ids", () => {
  test("found by reading the lists, in any of the four; a caller's id keeps its entry (duplicate)", async () => {
    const ids = [
      await enqueue(asyncCall('/a', 1, 'execute')),
      await enqueue(asyncCall('/b', 1, 'discard')),
      await enqueue(asyncCall('/c', 2, 'execute')),
      await enqueue(asyncCall('/d', 2, 'discard')),
      await enqueue(asyncCall('/e', 2, 'discard')),
    ];
    const own = await enqueue(asyncCall('/own', 2, 'execute', { id: 'mine-1' }));
    const jobs = queues.keysOf(0).jobs;
    expect(await indexed()).toEqual([own]);
    expect(await redis.object('ENCODING', jobs)).toBe('hashtable');
    expect(await redis.hget(jobs, own)).toBe('wL2:execute');
    expect((await queues.enqueue(asyncCall('/own', 2, 'execute', { id: 'mine-1' }), ADMISSION)).outcome).toBe('duplicate');
    expect(await queues.lookup(ids[0])).toMatchObject({ state: 'waiting', queue: 'L1:execute', position: 0, url: '/a' });
    expect(await queues.lookup(ids[1])).toMatchObject({ state: 'waiting', queue: 'L1:discard', position: 0, url: '/b' });
    expect(await queues.lookup(ids[2])).toMatchObject({ state: 'waiting', queue: 'L2:execute', position: 0, url: '/c' });
    expect(await queues.lookup(ids[4])).toMatchObject({ state: 'waiting', queue: 'L2:discard', position: 1, url: '/e' });
    expect(await queues.lookup(own)).toMatchObject({ state: 'waiting', queue: 'L2:execute', position: 1, url: '/own' });
    expect(await queues.lookup('nobody')).toEqual({ id: 'nobody', state: 'unknown' });
    expect(await queues.deleteJob(ids[3])).toBe('deleted');
    expect(await redis.llen(queues.keysOf(0).queue(2, 'discard'))).toBe(1);
    expect(await queues.lookup(ids[3])).toEqual({ id: ids[3], state: 'unknown' });
    expect(await queues.deleteJob(ids[3])).toBe('unknown');
    // Claimed, it is indexed as running; finished, forgotten.
    const [first] = await claim('w1', 1);
    expect(first.id).toBe(ids[0]);
    expect(await queues.lookup(ids[0])).toMatchObject({ state: 'running', worker: 'w1' });
  });

  test('one call reads at most scanMax entries, and says so when the job may wait further back', async () => {
    const [store] = partitionStores(redis, queues.prefix, 1);
    const first = await enqueue(asyncCall('/first', 1, 'execute'));
    for (let i = 0; i < 5; i++) await enqueue(asyncCall(`/l1-${i}`, 1, 'execute'));
    for (let i = 0; i < 5; i++) await enqueue(asyncCall(`/l2-${i}`, 2, 'execute'));
    const last = await enqueue(asyncCall('/last', 1, 'execute'));
    // Read from the tails in turn: the first of level 1 is among the first entries read.
    expect(await store.lookup(first, 2)).toMatchObject({ position: 0 });
    expect(await store.lookup(last, 4)).toMatchObject({ where: '', searched: 4 });
    expect(await store.lookup(last, 12)).toMatchObject({ where: 'wL1:execute', position: 6 });
    expect(await store.lookup('nobody', 12)).toBeNull();
    expect(await store.lookup('nobody', 11)).toMatchObject({ where: '', searched: 11 });
    expect(await store.deleteJob(last, 4)).toBe('notWithinScan');
    expect(await store.deleteJob(last, 12)).toBe('deleted');
    // With an entry, the bound holds in its one list too.
    const own = await enqueue(asyncCall('/own', 1, 'execute', { id: 'mine-2' }));
    expect(await store.deleteJob(own, 3)).toBe('notWithinScan');
    expect(await store.lookup(own, 3)).toMatchObject({ where: 'wL1:execute', position: -1 });
    expect(await store.deleteJob(own, 100)).toBe('deleted');
  });
});

describe('a rolling upgrade: what the previous version stored is read alike', () => {
  test('payloads with "at" in Unix ms and an index entry for every waiting job: lookup, gauges, claim, keep, delete, check', async () => {
    const k = queues.keysOf(0);
    const atA = Date.now() - 60_000;
    const old = (id: string, at: number, rest: string): string => `{"id":"${id}","at":${at},${rest},"method":"POST","url":"/${id}"}`;
    // As the previous version wrote them: 13-digit enqueue times, every waiting job indexed.
    await redis.lpush(k.queue(1, 'execute'), old('oldA', atA, '"level":1'), old('oldB', atA + 1, '"level":1'));
    await redis.hset(k.queue(2, 'last'), 'k', old('oldL', atA + 2, '"level":2,"policy":"last","key":"k"'));
    await redis.lpush(k.order(2), 'k');
    await redis.hset(k.newest(2), 'k', 'oldL');
    await redis.hset(k.jobs, 'oldA', 'wL1:execute', 'oldB', 'wL1:execute', 'oldL', 'wL2:last\nk', 'oldD', `d${atA + 5}:200:1:${atA}:POST:/oldD`);
    await redis.zadd(k.done, atA + 5, 'oldD');
    const fresh = await enqueue(asyncCall('/new', 1, 'execute'));
    const iso = (ms: number): string => new Date(ms).toISOString();

    expect(await queues.lookup('oldA')).toMatchObject({ state: 'waiting', queue: 'L1:execute', position: 0, enqueuedAt: iso(atA) });
    expect(await queues.lookup('oldL')).toMatchObject({ state: 'waiting', queue: 'L2:last', key: 'k', enqueuedAt: iso(atA + 2) });
    expect(await queues.lookup('oldD')).toMatchObject({ state: 'done', enqueuedAt: iso(atA) });
    const freshView = await queues.lookup(fresh);
    expect(freshView).toMatchObject({ state: 'waiting', position: 2 });
    expect(Math.abs(Date.parse(freshView.enqueuedAt!) - Date.now())).toBeLessThan(60_000);
    const gauges = await queues.gauges();
    expect(gauges.oldestAgeSeconds[1]).toBeGreaterThanOrEqual(59);
    expect(gauges.oldestAgeSeconds[1]).toBeLessThan(600);

    const [a] = await claim('w1', 1);
    expect([a.id, a.at]).toEqual(['oldA', atA]);
    await queues.finish(0, 'w1', [{ job: a, outcome: 'done', status: 200 }], 60_000);
    expect(await queues.lookup('oldA')).toMatchObject({ state: 'done', enqueuedAt: iso(atA) });
    expect(await queues.deleteJob('oldB')).toBe('deleted');
    const both = await claim('w1', 2);
    const [l, n] = [both.find((j) => j.id === 'oldL')!, both.find((j) => j.id === fresh)!];
    expect(l.at).toBe(atA + 2);
    expect(Math.abs(n.at - Date.now())).toBeLessThan(60_000);
    expect(n.payload).toMatch(/^\{"id":"[^"]+","at":\d{8,11},"level":1,/);
    const report = await checkDeployment(queues);
    expect(report.problems).toEqual([]);
  });
});

describe('deleting one dead job', () => {
  /** Claims every waiting job and fails each for good: they go to the dead list. */
  async function allDead(): Promise<void> {
    for (const job of await claim('w1')) expect(await queues.fail(0, 'w1', job.token, { status: 500, error: `failed ${job.id}` }, 100)).toBe('dead');
  }

  test('removes that entry only, its index entry with it, and counts it; an id not in the dead list is unknown', async () => {
    const [a, b, c] = [
      await enqueue(asyncCall('/a', 1, 'execute')),
      await enqueue(asyncCall('/b', 2, 'execute')),
      await enqueue(asyncCall('/c', 1, 'execute')),
    ];
    await allDead();
    const k = queues.keysOf(0);
    expect(await redis.llen(k.dead)).toBe(3);
    expect(await queues.deleteDead(b)).toBe('deleted');
    expect((await queues.listDead(10)).map((e) => (JSON.parse(e) as { job: { id: string } }).job.id).sort()).toEqual([a, c].sort());
    expect(await queues.lookup(b)).toEqual({ id: b, state: 'unknown' });
    expect(await redis.hexists(k.jobs, b)).toBe(0);
    expect(await redis.hget(k.stats, 'dead:deleted')).toBe('1');
    expect(await queues.deleteDead(b)).toBe('unknown');
    expect(await queues.deleteDead('*')).toBe('unknown');
    // A waiting job is not a dead one: delete is for it.
    const waiting = await enqueue(asyncCall('/w', 1, 'execute'));
    expect(await queues.deleteDead(waiting)).toBe('unknown');
    expect(await queues.lookup(waiting)).toMatchObject({ state: 'waiting' });
    // The others are untouched: a requeue still brings one back.
    expect(await queues.requeueDead(a)).toBe('requeued');
    expect(await redis.llen(k.dead)).toBe(1);
  });

  test("a dead `last` message: its key's newest mark goes with it (a new message of the key is queued afresh), but not a newer message's mark", async () => {
    const k = queues.keysOf(0);
    const first = await enqueue(asyncCall('/k', 1, 'last', { key: 'k' }));
    await allDead();
    // While dead it stays its key's newest (a requeue can tell whether a newer one came since).
    expect(await redis.hget(k.newest(1), 'k')).toBe(first);
    expect(await queues.deleteDead(first)).toBe('deleted');
    expect(await redis.hexists(k.newest(1), 'k')).toBe(0);
    const second = await enqueue(asyncCall('/k', 1, 'last', { key: 'k' }));
    expect(await queues.lookup(second)).toMatchObject({ state: 'waiting', queue: 'L1:last', key: 'k' });

    // Dead, then a newer message of its key accepted: deleting the dead one leaves the newer one's mark.
    await allDead();
    const third = await enqueue(asyncCall('/k', 1, 'last', { key: 'k' }));
    expect(await redis.hget(k.newest(1), 'k')).toBe(third);
    expect(await queues.deleteDead(second)).toBe('deleted');
    expect(await redis.hget(k.newest(1), 'k')).toBe(third);
    expect(await queues.lookup(third)).toMatchObject({ state: 'waiting', key: 'k' });
  });

  test('with several partitions, the one that holds it', async () => {
    const parts = new Queues(redis, uniquePrefix('ops-parts'), 3);
    await parts.agreeOnPartitions();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await parts.enqueue(asyncCall('/p', 1, 'execute'), ADMISSION)).id);
    for (let p = 0; p < 3; p++) {
      await parts.register(`w${p}`, LEASE, p);
      const claimed = await parts.claim(p, `w${p}`, 10, 10, SELECTION, LEASE, undefined, true);
      if (claimed === 'lost') throw new Error('lost');
      for (const run of claimed.runs) await parts.fail(p, `w${p}`, run.token, { status: 500, error: 'x' }, 100);
    }
    expect((await parts.listDead(10)).length).toBe(6);
    for (const id of ids.slice(0, 4)) expect(await parts.deleteDead(id)).toBe('deleted');
    expect((await parts.listDead(10)).map((e) => (JSON.parse(e) as { job: { id: string } }).job.id).sort()).toEqual(ids.slice(4).sort());
  });
});

describe('per-call job options', () => {
  test('attempts, backoff and job_timeout travel with the job; delay holds it like a retry until due', async () => {
    const id = await enqueue(asyncCall('/o', 1, 'execute', { attempts: 2, backoff: 0.5, job_timeout: 7 }));
    const [job] = await claim('w1');
    expect(job).toMatchObject({ id, attempts: 2, backoffMs: 500, timeoutMs: 7000 });

    const later = await enqueue(asyncCall('/later', 1, 'execute', { delay: 0.3 }));
    expect(await queues.lookup(later)).toMatchObject({ state: 'retry', url: '/later' });
    expect(await claim('w2')).toEqual([]);
    await sleep(350);
    expect(await queues.promoteDue(0, 100)).toBe(1);
    expect((await claim('w2')).map((j) => j.id)).toEqual([later]);
  });

  test('a delayed last message replaces the waiting one of its key', async () => {
    await enqueue(asyncCall('/k', 1, 'last', { key: 'k' }, { v: 1 }));
    const newer = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k', delay: 0.2 }, { v: 2 }), ADMISSION);
    expect(newer.outcome).toBe('replaced');
    expect(await claim('w1')).toEqual([]);
    await sleep(250);
    await queues.promoteDue(0, 100);
    expect((await claim('w1')).map((j) => j.content)).toEqual([{ v: 2 }]);
  });

  test.each([
    ['attempts', 0, /^queue_detail\.attempts: at least 1$/],
    ['attempts', 1.5, /^queue_detail\.attempts: must be a whole number$/],
    ['attempts', '3', /^queue_detail\.attempts: expected a whole number of runs, got string "3"$/],
    ['backoff', -1, /^queue_detail\.backoff: must be more than 0 /],
    ['job_timeout', 0, /^queue_detail\.job_timeout: must be more than 0 /],
    ['delay', -2, /^queue_detail\.delay: must not be negative$/],
    ['delay', 'soon', /^queue_detail\.delay: expected a number of seconds, got string "soon"$/],
  ])('queue_detail.%s = %j is refused with a message naming it', (field, value, message) => {
    expect(() => asyncCall('/x', 1, 'execute', { [field]: value })).toThrow(message);
  });
});
