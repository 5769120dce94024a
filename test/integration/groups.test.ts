// Tenants in the store's scripts (docs/design.md, "Tenants"): groups of a level served in
// turn, FIFO inside a group; a cap on a group's live runs and a rate on its starts, both
// applied in the claim's step; run ends counting down, recovery too; `last` inside a group.
import Redis from 'ioredis';
import { decodeJob, type Job } from '../../shared/store/format/job';
import { keysFor } from '../../shared/store/keys';
import { Queues } from '../../shared/store/queues';
import { Store, type SelectionOptions } from '../../shared/store/store';
import { uniquePrefix } from '../helpers/redis';
import { asyncCall, suiteRedis } from '../helpers/store-calls';

const LEASE = 60_000;
const suite = suiteRedis();
let redis: Redis;
beforeAll(() => ({ redis } = suite));

const admission = { capacity: 100_000, discardThreshold: 100_000 };
const selection = (extra: Partial<SelectionOptions> = {}): SelectionOptions => ({ weights: [3, 1], strict: false, capacity: 100_000, ...extra });

async function fresh(name: string): Promise<{ store: Store; prefix: string }> {
  const prefix = uniquePrefix(name);
  const store = new Store(redis, prefix);
  await store.register('w', LEASE);
  return { store, prefix };
}

async function send(store: Store, url: string, group?: string, policy: 'execute' | 'last' | 'discard' = 'execute', detail: Record<string, unknown> = {}) {
  return store.enqueue(asyncCall(url, 1, policy, { ...(group !== undefined && { group }), ...detail }), admission);
}

async function claim(store: Store, n: number, sel = selection(), worker = 'w', lease = LEASE): Promise<Array<Job & { payload: string }>> {
  const claimed = await store.claim(worker, n, n, sel, lease);
  if (claimed === 'lost') throw new Error('lease lost');
  return claimed.runs.map((r) => ({ ...decodeJob(r.token, r.payload), payload: r.payload }));
}

const done = (job: Job) => ({ job, outcome: 'done' as const, status: 200 });

test('groups of a level are served in turn, one message each, FIFO inside a group; the default group takes its turn too', async () => {
  const { store } = await fresh('groups-turn');
  for (let i = 0; i < 4; i++) await send(store, `/a${i}`, 'a');
  for (let i = 0; i < 2; i++) await send(store, `/b${i}`, 'b');
  for (let i = 0; i < 2; i++) await send(store, `/d${i}`);
  const order: string[] = [];
  for (;;) {
    const [job] = await claim(store, 1);
    if (!job) break;
    order.push(job.url);
  }
  // a joined first, then b; the default group's stamp starts at 0, so it is served first.
  expect(order).toEqual(['/d0', '/a0', '/b0', '/d1', '/a1', '/b1', '/a2', '/a3']);
  // Within one claim of many, the same turns.
  for (let i = 0; i < 3; i++) await send(store, `/x${i}`, 'x');
  for (let i = 0; i < 3; i++) await send(store, `/y${i}`, 'y');
  expect((await claim(store, 6)).map((j) => j.url)).toEqual(['/x0', '/y0', '/x1', '/y1', '/x2', '/y2']);
});

test('a group past its cap is passed over and keeps its place; a finished run frees the place', async () => {
  const { store, prefix } = await fresh('groups-cap');
  for (let i = 0; i < 5; i++) await send(store, `/a${i}`, 'a');
  for (let i = 0; i < 5; i++) await send(store, `/b${i}`, 'b');
  const first = await claim(store, 10, selection({ groupConcurrency: 2 }));
  expect(first.map((j) => j.url)).toEqual(['/a0', '/b0', '/a1', '/b1']);
  expect(await redis.hgetall(keysFor(prefix).groupsRunning)).toEqual({ a: '2', b: '2' });
  // Nothing more while both are at their cap; the claim does not hand the turn away.
  expect(await claim(store, 10, selection({ groupConcurrency: 2 }))).toEqual([]);
  await store.finish('w', [done(first[0])]);
  expect(await redis.hget(keysFor(prefix).groupsRunning, 'a')).toBe('1');
  expect((await claim(store, 10, selection({ groupConcurrency: 2 }))).map((j) => j.url)).toEqual(['/a2']);
  // A group's own limit (switchyard group) wins over the flag.
  await redis.hset(keysFor(prefix).groupsLimits, 'b', '3:');
  expect((await claim(store, 10, selection({ groupConcurrency: 2 }))).map((j) => j.url)).toEqual(['/b2']);
});

test("recovery of a dead worker's runs frees its groups' places", async () => {
  const { store, prefix } = await fresh('groups-recover');
  await store.register('dead', 400);
  for (let i = 0; i < 3; i++) await send(store, `/a${i}`, 'a');
  const taken = await claim(store, 3, selection({ groupConcurrency: 2 }), 'dead', 400);
  expect(taken.map((j) => j.url)).toEqual(['/a0', '/a1']);
  expect(await claim(store, 3, selection({ groupConcurrency: 2 }))).toEqual([]);
  await new Promise((r) => setTimeout(r, 500));
  expect(await store.requeueWorker('dead', 'expired', 5, 100)).toBe(2);
  expect(await redis.hget(keysFor(prefix).groupsRunning, 'a')).toBeNull();
  // Back at the front of the group (among themselves in the order recovery meets them), before /a2.
  expect((await claim(store, 3, selection({ groupConcurrency: 2 }))).map((j) => j.url).sort()).toEqual(['/a0', '/a1']);
});

test('a failed run counts down and its retry waits in the group', async () => {
  const { store, prefix } = await fresh('groups-fail');
  await send(store, '/a0', 'a');
  const [job] = await claim(store, 1, selection({ groupConcurrency: 1 }));
  expect(await store.fail('w', job.token, { retryDelayMs: 0 }, 100)).toBe('retry');
  expect(await redis.hget(keysFor(prefix).groupsRunning, 'a')).toBeNull();
  await store.promoteDue(100);
  const [again] = await claim(store, 1, selection({ groupConcurrency: 1 }));
  expect([again.url, again.attempt, again.group]).toEqual(['/a0', 2, 'a']);
});

test('a rate-limited group starts no more than its rate; the claim says when it may run next', async () => {
  const { store } = await fresh('groups-rate');
  for (let i = 0; i < 5; i++) await send(store, `/a${i}`, 'a');
  for (let i = 0; i < 5; i++) await send(store, `/b${i}`, 'b');
  const sel = selection({ groupRate: 10 }); // one every 100 ms
  const claimed = await store.claim('w', 10, 10, sel, LEASE);
  if (claimed === 'lost') throw new Error('lost');
  expect(claimed.runs.map((r) => decodeJob(r.token, r.payload).url)).toEqual(['/a0', '/b0']);
  const again = await store.claim('w', 10, 10, sel, LEASE);
  if (again === 'lost') throw new Error('lost');
  expect(again.runs).toEqual([]);
  expect(again.dueInMs).toBeGreaterThan(0);
  expect(again.dueInMs).toBeLessThanOrEqual(100);
  await new Promise((r) => setTimeout(r, again.dueInMs + 5));
  expect((await claim(store, 10, sel)).map((j) => j.url)).toEqual(['/a1', '/b1']);
});

test("`last` inside a group: newest wins, the key is the group's, never two runs of it at once", async () => {
  const { store } = await fresh('groups-last');
  expect((await send(store, '/v1', 'a', 'last', { key: 'k' })).outcome).toBe('queued');
  expect((await send(store, '/v2', 'a', 'last', { key: 'k' })).outcome).toBe('replaced');
  // The same key in another group is another key.
  expect((await send(store, '/w1', 'b', 'last', { key: 'k' })).outcome).toBe('queued');
  const [first, second] = await claim(store, 5);
  expect([first.url, second.url].sort()).toEqual(['/v2', '/w1']);
  const runOfA = first.group === 'a' ? first : second;
  // While group a's key runs, a newer message waits parked, and is not claimed.
  expect((await send(store, '/v3', 'a', 'last', { key: 'k' })).outcome).toBe('queued');
  expect(await claim(store, 5)).toEqual([]);
  await store.finish('w', [done(runOfA)]);
  expect((await claim(store, 5)).map((j) => j.url)).toEqual(['/v3']);
});

test("grouped messages count in the level's backlog: discard drops at the threshold", async () => {
  const { store } = await fresh('groups-backlog');
  const limits = { capacity: 100, discardThreshold: 3 };
  const outcomes: string[] = [];
  for (let i = 0; i < 5; i++) outcomes.push((await store.enqueue(asyncCall(`/x${i}`, 1, 'discard', { group: `g${i % 2}` }), limits)).outcome);
  expect(outcomes).toEqual(['queued', 'queued', 'queued', 'dropped', 'dropped']);
});

test('a group name outside the rule is refused with the field named', () => {
  expect(() => asyncCall('/x', 1, 'execute', { group: 'has space' })).toThrow(/queue_detail\.group/);
  expect(() => asyncCall('/x', 1, 'execute', { group: '' })).toThrow(/queue_detail\.group/);
  expect(() => asyncCall('/x', 1, 'execute', { group: 'x'.repeat(65) })).toThrow(/queue_detail\.group/);
  expect(asyncCall('/x', 1, 'execute', { group: 'acme:eu-1/team@a' }).queue?.group).toBe('acme:eu-1/team@a');
});

test('a grouped job is found and deleted by its id, with or without an index entry', async () => {
  const { store, prefix } = await fresh('groups-lookup');
  const plain = await send(store, '/a0', 'a');
  await send(store, '/a1', 'a');
  const own = await send(store, '/a2', 'a', 'execute', { id: 'mine-1' });
  const keyed = await send(store, '/k', 'a', 'last', { key: 'k' });
  expect((await store.lookup(plain.id))?.where).toBe('wL1:execute@a');
  expect((await store.lookup(plain.id))?.position).toBe(0);
  expect((await store.lookup(own.id))?.where).toBe('wL1:execute@a');
  expect((await store.lookup(keyed.id))?.where).toBe('wL1:last@a\nk');
  expect(await store.deleteJob(plain.id)).toBe('deleted');
  expect(await store.deleteJob(own.id)).toBe('deleted');
  expect(await store.deleteJob(keyed.id)).toBe('deleted');
  expect(await redis.hget(keysFor(prefix).stats, 'L1:grouped')).toBe('1');
  expect((await claim(store, 5)).map((j) => j.url)).toEqual(['/a1']);
  expect(await redis.hget(keysFor(prefix).stats, 'L1:grouped')).toBe('0');
  // The group left the ring once found with nothing in line.
  expect(await claim(store, 5)).toEqual([]);
  expect(await redis.zcard(keysFor(prefix).groupRing(1))).toBe(0);
});

test('groups beyond the first 64 in the ring are reached when those before them are at their cap', async () => {
  const { store, prefix } = await fresh('groups-many');
  // 70 groups with two jobs each, a cap of one run per group.
  for (let g = 0; g < 70; g++) for (let i = 0; i < 2; i++) await send(store, `/g${g}/${i}`, `g${String(g).padStart(2, '0')}`);
  const sel = selection({ groupConcurrency: 1 });
  const first = await claim(store, 200, sel);
  expect(first).toHaveLength(70); // one of each group: every group at its cap of 1
  expect(new Set(first.map((j) => j.group)).size).toBe(70);
  // Free the places of the last four groups only: their second jobs are reached past 66 capped groups.
  const lastFour = first.filter((j) => ['g66', 'g67', 'g68', 'g69'].includes(j.group!));
  await store.finish('w', lastFour.map(done));
  expect((await claim(store, 200, sel)).map((j) => j.group).sort()).toEqual(['g66', 'g67', 'g68', 'g69']);
  expect(await redis.hlen(keysFor(prefix).groupsRunning)).toBe(70);
});

test('with partitions, a group lives in one partition: its cap is exact there, its jobs in order', async () => {
  const queues = new Queues(redis, uniquePrefix('groups-parts'), 3);
  for (let i = 0; i < 6; i++) await queues.enqueue(asyncCall(`/a${i}`, 1, 'execute', { group: 'acme' }), admission);
  for (let i = 0; i < 6; i++) await queues.enqueue(asyncCall(`/b${i}`, 1, 'execute', { group: 'globex' }), admission);
  const found: Record<string, number[]> = {};
  for (let p = 0; p < 3; p++) {
    await queues.register('w', LEASE, p);
    const claimed = await queues.claim(p, 'w', 20, 20, selection({ groupConcurrency: 4 }), LEASE);
    if (claimed === 'lost') throw new Error('lost');
    for (const run of claimed.runs) {
      const job = decodeJob(run.token, run.payload);
      (found[job.group!] ??= []).push(p);
      expect(job.url.slice(2)).toBe(String(found[job.group!].length - 1)); // FIFO: /a0, /a1, …
    }
  }
  // Each group's four runs (its cap) came from one partition, the same for all of them.
  for (const group of ['acme', 'globex']) {
    expect(found[group]).toHaveLength(4);
    expect(new Set(found[group]).size).toBe(1);
    expect(found[group][0]).toBe(queues.partitionFor(asyncCall('/x', 1, 'execute', { group })));
  }
});

test('a group with work in one queue only is popped there first; work arriving in another of its queues gets its turn at once', async () => {
  const { store, prefix } = await fresh('groups-alone');
  for (let i = 0; i < 6; i++) await send(store, `/e${i}`, 'a');
  // One claim at a time: the group's other queues are found empty once, then its stamp marks it.
  expect((await claim(store, 1)).map((j) => j.url)).toEqual(['/e0']);
  expect((await claim(store, 1)).map((j) => j.url)).toEqual(['/e1']);
  const score = Number(await redis.zscore(keysFor(prefix).groupRing(1), 'a'));
  expect(score - Math.floor(score)).toBe(0.5); // execute (0) + 4, over 8: alone
  await send(store, '/d0', 'a', 'discard');
  const after = Number(await redis.zscore(keysFor(prefix).groupRing(1), 'a'));
  expect(after - Math.floor(after)).toBe(0); // the mark is gone: its queues take turns again
  expect((await claim(store, 2)).map((j) => j.url)).toEqual(['/e2', '/d0']);
  expect((await claim(store, 5)).map((j) => j.url)).toEqual(['/e3', '/e4', '/e5']);
});

test('rate limiters of groups idle past the prune time are forgotten; the others stay', async () => {
  const { store, prefix } = await fresh('groups-prune');
  const k = keysFor(prefix);
  const [s] = await redis.time();
  const nowMs = Number(s) * 1000;
  await redis.hset(k.groupsTat, 'idle', String(nowMs - 3 * 3_600_000), 'recent', String(nowMs - 60_000), 'due', String(nowMs + 500));
  for (let i = 0; i < 2500; i++) await redis.hset(k.groupsTat, `old${i}`, '1000');
  let cursor = '0';
  do cursor = await store.pruneLimiters(cursor, 2 * 3_600_000);
  while (cursor !== '0');
  expect((await redis.hkeys(k.groupsTat)).sort()).toEqual(['due', 'recent']);
});
