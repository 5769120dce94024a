// Attacks on the tenant groups (docs/design.md, "Tenants"), at the store's level against a real
// Redis. Each test names the promise it attacks. A test under "Was a finding" failed on the code it was
// written against: the promise does not hold there (the comment says where the cause is). The
// others are attacks that held: they stay as regression tests.
import Redis from 'ioredis';
import { checkDeployment, formatReport } from '../../shared/store/check';
import { decodeJob, type Job } from '../../shared/store/format/job';
import { keysFor } from '../../shared/store/keys';
import { Queues } from '../../shared/store/queues';
import { Store, type SelectionOptions } from '../../shared/store/store';
import { uniquePrefix } from '../helpers/redis';
import { PartitionViews } from '../../shared/store/views';
import { parseParams } from '../../shared/call/params';
import { decodeLimits, encodeLimits, parseRate } from '../../shared/groups';
import { asyncCall, PARAMS_LIMITS, suiteRedis } from '../helpers/store-calls';

const LEASE = 60_000;
const suite = suiteRedis();
let redis: Redis;
beforeAll(() => ({ redis } = suite));

const admission = { capacity: 100_000, discardThreshold: 100_000 };
const selection = (extra: Partial<SelectionOptions> = {}): SelectionOptions => ({ weights: [3, 1], strict: false, capacity: 100_000, ...extra });

type Claimed = Job & { payload: string };

async function fresh(name: string): Promise<{ store: Store; prefix: string; k: ReturnType<typeof keysFor> }> {
  const prefix = uniquePrefix(name);
  const store = new Store(redis, prefix);
  await store.register('w', LEASE);
  return { store, prefix, k: keysFor(prefix) };
}

async function send(
  store: Store,
  url: string,
  group?: string,
  policy: 'execute' | 'last' | 'discard' = 'execute',
  detail: Record<string, unknown> = {},
  level: 1 | 2 = 1,
  content: unknown = null,
) {
  return store.enqueue(asyncCall(url, level, policy, { ...(group !== undefined && { group }), ...detail }, content), admission);
}

async function claim(store: Store, n: number, sel = selection(), worker = 'w', lease = LEASE): Promise<Claimed[]> {
  const claimed = await store.claim(worker, n, n, sel, lease);
  if (claimed === 'lost') throw new Error('lease lost');
  return claimed.runs.map((r) => ({ ...decodeJob(r.token, r.payload), payload: r.payload }));
}

const done = (job: Job) => ({ job, outcome: 'done' as const, status: 200 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function keysMatching(pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

/** The group of a stored payload, read as JSON (the test's own reading, not the scripts'). */
function groupOfPayload(payload: string): string | null {
  const job = JSON.parse(payload) as { group?: unknown };
  return typeof job.group === 'string' ? job.group : null;
}

/** group -> live runs, counted from the worker hashes. */
async function liveRuns(prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = Object.create(null);
  for (const key of await keysMatching(`{${prefix}}:worker:*`)) {
    if (key.endsWith(':inbox')) continue;
    for (const payload of Object.values(await redis.hgetall(key))) {
      const g = groupOfPayload(payload);
      if (g !== null) out[g] = (out[g] ?? 0) + 1;
    }
  }
  return out;
}

async function runningCounted(prefix: string): Promise<Record<string, number>> {
  const raw = await redis.hgetall(keysFor(prefix).groupsRunning);
  const out: Record<string, number> = Object.create(null);
  for (const [g, n] of Object.entries(raw)) out[g] = Number(n);
  return out;
}

/** Per level: the grouped messages waiting in the groups' queues (lists and `last` hashes), and the groups that have any. */
async function groupedWaiting(prefix: string, level: 1 | 2): Promise<{ total: number; groups: Set<string> }> {
  const k = keysFor(prefix);
  let total = 0;
  const groups = new Set<string>();
  const head = `{${prefix}}:L${level}:g:`;
  for (const key of await keysMatching(`${head}*`)) {
    const rest = key.slice(head.length);
    const m = /^(.*):(execute|discard|last)$/.exec(rest);
    if (!m || rest.endsWith(':last:order') || rest.endsWith(':last:newest')) continue;
    const n = m[2] === 'last' ? await redis.hlen(key) : await redis.llen(key);
    if (n > 0) groups.add(m[1]);
    total += n;
  }
  void k;
  return { total, groups };
}

/**
 * The promises that must hold at the end of every step: running[g] equals g's live runs; the
 * level's `grouped` counter equals the grouped messages waiting; every group with a message in
 * line (not parked behind its running key) is in its level's ring.
 */
async function expectGroupInvariants(prefix: string): Promise<void> {
  const k = keysFor(prefix);
  expect(await runningCounted(prefix)).toEqual(await liveRuns(prefix));
  for (const level of [1, 2] as const) {
    const waiting = await groupedWaiting(prefix, level);
    expect(Number((await redis.hget(k.stats, `L${level}:grouped`)) ?? 0)).toBe(waiting.total);
    const ring = new Set(await redis.zrange(k.groupRing(level), 0, -1));
    for (const g of waiting.groups) {
      const inLine =
        (await redis.llen(k.groupQueue(level, g, 'execute'))) +
        (await redis.llen(k.groupQueue(level, g, 'discard'))) +
        (await redis.llen(k.groupOrder(level, g)));
      if (inLine > 0) expect({ group: g, inRing: ring.has(g) }).toEqual({ group: g, inRing: true });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Found by the attack (each failed on the code it was written against), now fixed: they stay as
// regression tests. The causes named below are as they were.
// ---------------------------------------------------------------------------------------------

// Was a finding, fixed (promise: lookups/deletes and dead requeue of grouped jobs; `last` newest-wins inside a
// group). requeueDead.lua:20 reads the key's newest mark in the level's hash
// (K['L<n>:last:newest']), never the group's ({p}:L<n>:g:<g>:last:newest, where enqueue and bury
// keep it): a dead grouped `last` message is always answered `superseded` and dropped, even when
// it is its key's newest; and the group's newest mark is left pointing at a job that is gone.
test("a dead grouped `last` message that is still its key's newest can be requeued", async () => {
  const { store, k } = await fresh('ga-dead-last');
  const sent = await send(store, '/v1', 'a', 'last', { key: 'k' });
  const [run] = await claim(store, 1);
  expect(await store.fail('w', run.token, { status: 500, error: 'boom' }, 100)).toBe('dead');
  expect(await redis.hget(k.groupNewest(1, 'a'), 'k')).toBe(sent.id); // the mark stays while dead (bury)
  expect(await store.requeueDead(sent.id)).toBe('requeued');
  const [again] = await claim(store, 1);
  expect([again?.url, again?.group, again?.key]).toEqual(['/v1', 'a', 'k']);
});

// Was a finding, fixed (promise: deletes of grouped jobs leave nothing behind; newest marks point to live
// messages — the checker's invariant 4). deleteJob.lua:46 calls gone(level, policy, key) without
// the group for a job found in the delayed set, so forgetNewest (helpers/last/forgetNewest.lua)
// looks in the level's newest hash: the group's mark for the key stays, naming a deleted job.
test("deleting a delayed grouped `last` message forgets its key's newest mark", async () => {
  const { store, k } = await fresh('ga-del-delayed');
  const sent = await send(store, '/v1', 'a', 'last', { key: 'k', delay: 60 });
  expect(await redis.hget(k.groupNewest(1, 'a'), 'k')).toBe(sent.id);
  expect(await store.deleteJob(sent.id)).toBe('deleted');
  expect(await redis.hget(k.groupNewest(1, 'a'), 'k')).toBeNull();
});

// Was a finding: the docs promised R·W + 1 starts per window of W, which the limiter does not
// keep (a claim up to half an interval late keeps the schedule, so a group that was idle may start
// again half an interval after its first start). The docs now state the bound the limiter keeps:
// starts at least half an interval apart, at most R·W + 1.5 in any window of W.
test('a rate of 10/s: no two starts of a group within half an interval, no window of W with more than R·W + 1.5 starts', async () => {
  const { store } = await fresh('ga-rate-window');
  for (let i = 0; i < 8; i++) await send(store, `/a${i}`, 'a');
  const sel = selection({ groupRate: 10 });
  // Each start's time is its run token: Redis µs at the claim (firstToken: max(last + 1, TIME)).
  const starts: number[] = [];
  const until = Date.now() + 450;
  while (Date.now() < until) {
    for (const job of await claim(store, 5, sel)) starts.push(job.token / 1000);
    await sleep(5);
  }
  expect(starts.length).toBeGreaterThanOrEqual(2);
  const rate = 10 / 1000; // per ms
  const worst = { starts: 0, windowMs: 0, allowed: 0 };
  for (let i = 0; i < starts.length; i++) {
    for (let j = i + 1; j < starts.length; j++) {
      const windowMs = starts[j] - starts[i];
      const allowed = rate * (windowMs + 1) + 1.5; // + 1 ms: the limiter reads Redis's clock in whole ms
      if (j - i + 1 > allowed && j - i + 1 - allowed > worst.starts - worst.allowed) Object.assign(worst, { starts: j - i + 1, windowMs, allowed });
    }
  }
  expect(worst).toEqual({ starts: 0, windowMs: 0, allowed: 0 });
  const gaps = starts.slice(1).map((t, i) => t - starts[i]);
  expect(Math.min(...gaps)).toBeGreaterThanOrEqual(50 - 1); // half the 100 ms interval (Redis's clock in whole ms)
});

// Was a finding, fixed (promise: `last` inside a group — newest wins). A message sent with a delay while an
// older message of its key runs is its key's newest (enqueue.lua:144 marks it), but when it is
// due, requeue (helpers/lines/requeue.lua:11-12) drops it as `superseded` because the key is
// running: the older run's result stands and the newest message never runs. Its newest mark is
// left naming a job that is gone. (Without a delay the same message is parked and runs after.)
test('a delayed grouped `last` message that comes due while its key runs is not lost', async () => {
  const { store, k } = await fresh('ga-delayed-last');
  await send(store, '/v1', 'a', 'last', { key: 'k' });
  const [first] = await claim(store, 1);
  const newer = await send(store, '/v2', 'a', 'last', { key: 'k', delay: 0.05 });
  expect(newer.outcome).toBe('queued');
  await sleep(80);
  await store.promoteDue(100);
  await store.finish('w', [done(first)]);
  const next = await claim(store, 1);
  expect(next.map((j) => j.url)).toEqual(['/v2']);
  expect(await redis.hget(k.stats, 'L1:superseded')).toBeNull();
});

// Was a finding, fixed (promise: the default group takes its turn in the same round and is never capped or
// limited; no group with work is left out). With more than 1024 capped groups ahead of the
// default group's stamp, readRound (claimJobs.lua:158-175) reads the ring 16 × 64 members, never
// reaches the default group's place (it is only put in the list before a member whose stamp is
// at or above its own, or at the ring's end), and popLevel returns nil (claimJobs.lua:186): the
// claim takes nothing, marks the level emptied (no baton), while ungrouped work waits. The
// default group is starved for as long as those groups stay at their cap.
test('1100 groups at their cap do not starve the (never capped) default group', async () => {
  const { store } = await fresh('ga-default-starved');
  const groups = 1100;
  for (let g = 0; g < groups; g++) for (let i = 0; i < 2; i++) await send(store, `/g${g}/${i}`, `g${g}`);
  const sel = selection({ groupConcurrency: 1 });
  // One of each group: every group at its cap (a claim reads 1024 ring members at most).
  const first = [...(await claim(store, 5000, sel)), ...(await claim(store, 5000, sel))];
  expect(new Set(first.map((j) => j.group)).size).toBe(groups);
  expect(first).toHaveLength(groups);
  await send(store, '/d0');
  expect((await claim(store, 10, sel)).map((j) => j.url)).toEqual(['/d0']); // never served yet: its stamp is 0
  await send(store, '/d1');
  const claimed = await store.claim('w', 10, 10, sel, LEASE);
  if (claimed === 'lost') throw new Error('lost');
  expect(claimed.runs.map((r) => decodeJob(r.token, r.payload).url)).toEqual(['/d1']);
}, 120_000);

// Was a finding, fixed (promise: a group with work waiting is never starved forever — partial outage: a
// failover to a replica whose clock is behind the old master's). Ring stamps are Redis µs
// (joinRing: TIME; a served group: the claim's TIME + picks, claimJobs.lua:101/192/207) and are
// never kept above the highest stamp already in the ring. Stamps written under a clock that ran
// ahead stay above every stamp the new clock writes: such a group is served only once no other
// group has work. The old master's stamps are written here directly, as replication leaves them.
test('a group whose stamp was written by a clock ahead (failover) still gets its turn', async () => {
  const { store, k } = await fresh('ga-clock-skew');
  await send(store, '/old0', 'old');
  // The old master's clock was 10 minutes ahead when it put `old` in the ring.
  const [sec, usec] = await redis.time();
  await redis.zadd(k.groupRing(1), Number(sec) * 1e6 + Number(usec) + 600e6, 'old');
  const served: string[] = [];
  for (let round = 0; round < 20; round++) {
    await send(store, `/x${round}`, 'x');
    await send(store, `/y${round}`, 'y');
    for (const job of await claim(store, 2)) served.push(job.group!);
  }
  expect(served).toContain('old');
});

// Was a finding, fixed (promise: every test ends with `switchyard check` finding zero problems, and --repair
// only repairs what is wrong). The checker (shared/store/check/, checkState.lua) knows nothing of
// groups: it does not read the groups' queues, nor the `G<n>:<g>\n<key>` fields of {p}:running.
// On a state the scripts keep valid it reports a grouped waiting job's index entry as
// INDEX_DANGLING, a grouped `last` run as RUN_KEY_NOT_HELD and its held key as HELD_KEY_ORPHANED;
// --repair then drops the index entries of grouped jobs waiting in line, so a caller's id is
// forgotten and the same call sent again is queued twice (enqueue.lua:57 finds no entry).
test('the checker finds nothing wrong with a valid grouped state', async () => {
  const { store, prefix } = await fresh('ga-checker');
  await send(store, '/a0', 'a');
  await send(store, '/k', 'a', 'last', { key: 'k' });
  await claim(store, 2); // /a0 and the run of group a's key k
  await send(store, '/k2', 'a', 'last', { key: 'k' }); // parked behind the run of k
  await send(store, '/own', 'a', 'execute', { id: 'own-1' });
  await expectGroupInvariants(prefix);
  const queues = new Queues(redis, prefix, 1);
  const report = await checkDeployment(queues);
  expect(report.problems.map((p) => p.code)).toEqual([]);
  expect(report.ok).toBe(true);
  void formatReport;
});

test("`check --repair` on a valid grouped state does not forget a caller's id (no duplicate run)", async () => {
  const { store, prefix } = await fresh('ga-checker-repair');
  await send(store, '/own', 'a', 'execute', { id: 'own-1' });
  await checkDeployment(new Queues(redis, prefix, 1), { repair: true });
  // The same call sent again (a caller's retry after an unknown outcome): still known.
  expect((await send(store, '/own', 'a', 'execute', { id: 'own-1' })).outcome).toBe('duplicate');
  expect((await claim(store, 5)).map((j) => j.url)).toEqual(['/own']);
});

// Was a finding, fixed (promise: an operator sees what waits — `switchyard stats` "backlog per level", the
// gauges switchyard_queue_backlog / switchyard_queue_oldest_age_seconds "of the level"). The level-2
// switch and discard count grouped messages (backlog.lua adds L<n>:grouped), but the stats view
// (shared/store/views.ts:69-72: the six queues only) and queueGauges.lua:77-91 (the level's own
// lists) leave every group's queue out: level 2 refuses calls while stats shows a backlog of 0 and
// the gauges say nothing waits.
test('stats and gauges count grouped messages: a level 2 that refuses does not show an empty backlog', async () => {
  const { store, k } = await fresh('ga-stats');
  const limits = { capacity: 10, discardThreshold: 6 };
  const outcomes: string[] = [];
  for (let i = 0; i < 10; i++) outcomes.push((await store.enqueue(asyncCall(`/x${i}`, 2, 'execute', { group: 'a' }), limits)).outcome);
  expect(outcomes.filter((o) => o === 'refused').length).toBeGreaterThan(0); // the switch counts them
  const stats = await new PartitionViews(redis, k).stats();
  const gauges = await store.gauges();
  expect({ backlog: stats.backlog.L2, oldest: gauges.oldestAgeSeconds[2] !== null }).toEqual({ backlog: 9, oldest: true });
});

// Was a finding, fixed (promise: lookups and deletes of grouped jobs — docs/protocol.md, `switchyard job`: a
// message without an index entry is looked for in the lists, at most 100,000 entries, and
// `unknown` only when they hold more). findWaiting.lua:27-28 reads the lists of the first 1000
// groups of each ring only: a job of the 1001st group is never read, though the lists hold 1001
// messages in all; lookup answers "not among the 100,000 read" and delete `notWithinScan`.
test('a job of the 1001st group (no index entry) is found and deleted by its id', async () => {
  const { store } = await fresh('ga-lookup-1001');
  let last = '';
  for (let g = 0; g < 1001; g++) last = (await send(store, `/g${g}`, `t${g}`)).id;
  const found = await store.lookup(last);
  expect(found?.where).toBe('wL1:execute@t1000');
  expect(await store.deleteJob(last)).toBe('deleted');
}, 60_000);

// Was a finding, fixed (promise: a group's own limits in {p}:groups:limits win over the flags — README:
// `switchyard group acme --concurrency 5 --rate 100/s`). Two gaps: (1) there is no `switchyard
// group` command (cli: "unknown command"; see test/e2e/groups-attack.test.ts); (2) the value's
// format, encodeLimits (shared/groups.ts), writes a number as JavaScript prints it, and a slow rate
// prints with an exponent (0.003/h: 8.333333333333334e-7); claimJobs.lua:119 reads only
// `^([%d.]*):([%d.]*)$`, so the whole override is ignored — its cap too — and the group runs
// with the flags' limits (here: no cap at all).
test("a group's own cap is applied when its rate is written with an exponent (encodeLimits)", async () => {
  const { store, k } = await fresh('ga-limits-format');
  await redis.hset(k.groupsLimits, 'a', encodeLimits({ concurrency: 1, rate: parseRate('0.003/h') }));
  expect(decodeLimits((await redis.hget(k.groupsLimits, 'a'))!).concurrency).toBe(1);
  for (let i = 0; i < 3; i++) await send(store, `/a${i}`, 'a');
  expect(await claim(store, 3)).toHaveLength(1);
});

// ---------------------------------------------------------------------------------------------
// Attacks that held: regression tests.
// ---------------------------------------------------------------------------------------------

test('held: hostile group names are refused at the door; odd but valid names get keys of their own', async () => {
  const refused: unknown[] = [
    '',
    'x'.repeat(65),
    '*',
    'a*',
    'has space',
    'a\nb',
    'a\n',
    '\na',
    'a"b',
    'a\\b',
    "a'b",
    'a,b',
    '{a}',
    'a}',
    'é',
    'ａ', // fullwidth a
    '😀',
    'a\u0000',
    'a\u2028',
    '\t',
    'a%2Fb'.replace('%', '\u0025\u0000'),
    5,
    null,
    true,
    ['a'],
    { a: 1 },
  ];
  for (const group of refused) expect(() => asyncCall('/x', 1, 'execute', { group })).toThrow(/queue_detail\.group/);
  // Escapes in the params' JSON are decoded before the rule: "\u0061" is "a", "\n" a newline.
  expect(() =>
    parseParams('{"url":"/x","method":"POST","reply":false,"queue_detail":{"level":1,"limit_policy":"execute","group":"a\\nb"}}', PARAMS_LIMITS),
  ).toThrow(/queue_detail\.group/);
  expect(
    parseParams('{"url":"/x","method":"POST","reply":false,"queue_detail":{"level":1,"limit_policy":"execute","group":"\\u0061"}}', PARAMS_LIMITS).queue?.group,
  ).toBe('a');

  const { store, prefix, k } = await fresh('ga-names');
  const valid = [
    'x'.repeat(64),
    '__proto__',
    'constructor',
    'execute',
    'last',
    'last:order',
    'a',
    'a:last',
    'a:last:order',
    'L1',
    'groups',
    '=+/@:.-_',
    'sy:L1:execute',
  ];
  for (const g of valid) {
    expect((await send(store, `/${g.length}`, g, 'last', { key: 'k' })).outcome).toBe('queued');
    expect((await send(store, `/${g.length}`, g)).outcome).toBe('queued');
  }
  expect(Number(await redis.hget(k.stats, 'L1:grouped'))).toBe(2 * valid.length);
  // Nothing reached the default group's queues.
  expect([await redis.llen(k.queue(1, 'execute')), await redis.hlen(k.queue(1, 'last'))]).toEqual([0, 0]);
  const runs = await claim(store, 100);
  expect(runs).toHaveLength(2 * valid.length);
  const byGroup: Record<string, number> = Object.create(null);
  for (const r of runs) byGroup[r.group!] = (byGroup[r.group!] ?? 0) + 1;
  expect(Object.keys(byGroup).sort()).toEqual([...valid].sort());
  for (const g of valid) expect(byGroup[g]).toBe(2);
  // Each group's key k is its own: every run of k holds a field of its own.
  expect(await redis.hlen(k.running)).toBe(valid.length);
  await expectGroupInvariants(prefix);
  expect(await store.finish('w', runs.map(done))).toBe(runs.length);
  expect(await redis.exists(k.groupsRunning, k.running)).toBe(0);
  await expectGroupInvariants(prefix);
});

test('held: a payload whose content, url or key hold `,"group":"x"` is not read as grouped', async () => {
  const { store, prefix, k } = await fresh('ga-content');
  const evil = ',"group":"x","method":"GET"';
  // A string content is JSON text, stored as it is: here its bytes hold the field as the prefix would.
  await store.enqueue(asyncCall('/e0', 1, 'execute', {}, `{"a":1${evil}}`), admission);
  await store.enqueue(asyncCall('/e1', 1, 'execute', {}, { a: 1, group: 'x', nested: { b: 2, group: 'x' } }), admission);
  await store.enqueue(asyncCall(`/e2?q=${encodeURIComponent(evil)}`, 1, 'execute', {}), admission);
  await store.enqueue(asyncCall('/e3', 1, 'last', { key: `k${evil}` }, `{"a":1${evil}}`), admission);
  // A grouped message with another group in its content counts under its own only.
  await store.enqueue(asyncCall('/g0', 1, 'execute', { group: 'real' }, { group: 'x' }), admission);
  expect(await redis.zrange(k.groupRing(1), 0, -1)).toEqual(['real']);
  expect(await redis.llen(k.queue(1, 'execute'))).toBe(3);
  const runs = await claim(store, 10, selection({ groupConcurrency: 1 }));
  expect(runs.find((r) => r.url === '/e0')!.payload).toContain(',"group":"x"');
  expect(runs.map((r) => r.group)).toEqual(expect.arrayContaining([null, null, null, null, 'real']));
  expect(await runningCounted(prefix)).toEqual({ real: 1 });
  expect(await redis.hkeys(k.running)).toEqual([`L1:k${evil}`]);
  await expectGroupInvariants(prefix);
  // Settled one by one through each path that reads the group back: finish, fail (retry, dead).
  const [e0, e1, e2, e3, g0] = ['/e0', '/e1', expect.stringMatching(/^\/e2/), '/e3', '/g0'].map((u) =>
    runs.find((r) => expect.objectContaining({ url: u }).asymmetricMatch(r))!,
  );
  await store.finish('w', [done(e0), done(g0)]);
  expect(await store.fail('w', e1.token, { retryDelayMs: 0 }, 100)).toBe('retry');
  expect(await store.fail('w', e2.token, { status: 500, error: 'x' }, 100)).toBe('dead');
  await store.finish('w', [done(e3)]);
  expect(await redis.exists(k.groupsRunning, k.running)).toBe(0);
  await expectGroupInvariants(prefix);
});

test('held: running[g] equals the live runs through finish, retry, dead, recovery, shutdown, orphans, lease lost, ttl drops, deletes, dead requeue and delays', async () => {
  const { store, prefix, k } = await fresh('ga-drift');
  const sel = selection({ groupConcurrency: 100 });
  const check = () => expectGroupInvariants(prefix);
  for (let i = 0; i < 6; i++) await send(store, `/a${i}`, 'a');
  for (let i = 0; i < 6; i++) await send(store, `/b${i}`, 'b', 'last', { key: `k${i % 3}` });
  await check();
  // finish, retry, dead
  const first = await claim(store, 4, sel);
  await check();
  await store.finish('w', [done(first[0]), done(first[3])]);
  expect(await store.fail('w', first[1].token, { retryDelayMs: 0 }, 100)).toBe('retry');
  expect(await store.fail('w', first[2].token, { status: 400, error: 'bad' }, 100)).toBe('dead');
  // a settle sent twice (its reply lost) counts nothing twice
  await store.finish('w', [done(first[0])]);
  expect(await store.fail('w', first[2].token, { status: 400, error: 'bad' }, 100)).toBe('gone');
  await check();
  // recovery of an expired worker
  await store.register('dead', 200);
  await claim(store, 2, sel, 'dead', 200);
  await check();
  await sleep(250);
  expect(await store.claim('dead', 1, 1, sel, 200)).toBe('lost'); // lease lost: nothing settled or claimed
  await store.requeueWorker('dead', 'expired', 5, 100);
  await check();
  // shutdown hand-back
  await store.register('stop', LEASE);
  await claim(store, 2, sel, 'stop');
  await store.requeueWorker('stop', 'shutdown', 5, 100);
  await check();
  // orphans: a claim's reply lost; the worker holds none of them
  await store.register('orph', LEASE);
  const orphaned = await claim(store, 2, sel, 'orph');
  expect(orphaned).toHaveLength(2);
  await store.requeueWorker('orph', 'orphans', 5, 100, []);
  await check();
  // settles riding on a claim whose reply is lost: the runs it started are orphans, the settles
  // sent again alone find their runs gone
  const riding = await claim(store, 2, sel, 'orph');
  expect(riding).toHaveLength(2);
  const lostReply = await store.claim('orph', 2, 2, sel, LEASE, undefined, true, { acks: riding.map(done), keepMs: 0 });
  if (lostReply === 'lost') throw new Error('lost');
  expect(lostReply.acknowledged).toBe(2);
  await check();
  expect(await store.finish('orph', riding.map(done))).toBe(0);
  await store.requeueWorker('orph', 'orphans', 5, 100, []);
  await check();
  // ttl expired at claim: dropped, never counted
  await send(store, '/ttl', 'c', 'execute', { ttl: 0.001 });
  await send(store, '/ttl-last', 'c', 'last', { key: 'kt', ttl: 0.001 });
  await sleep(10);
  // delays and a retry waiting: due later
  await send(store, '/later', 'a', 'execute', { delay: 0.02 });
  await send(store, '/later-last', 'b', 'last', { key: 'kd', delay: 0.02 });
  await check();
  // deletes of waiting grouped jobs (without an index entry, and a `last` one)
  const del1 = await send(store, '/del', 'a');
  const del2 = await send(store, '/del-last', 'd', 'last', { key: 'kx' });
  expect(await store.deleteJob(del1.id)).toBe('deleted');
  expect(await store.deleteJob(del2.id)).toBe('deleted');
  await check();
  // dead requeue (execute)
  expect(await store.requeueAllDead()).toBe(1);
  await check();
  await sleep(30);
  await store.promoteDue(100);
  await check();
  // drain everything, settling as we go
  for (let round = 0; round < 50; round++) {
    const runs = await claim(store, 3, sel);
    await check();
    if (runs.length === 0) break;
    await store.finish('w', runs.map(done));
    await check();
  }
  expect({ running: await redis.hgetall(k.groupsRunning), ring: await redis.zrange(k.groupRing(1), 0, -1) }).toEqual({ running: {}, ring: [] });
  expect(Number(await redis.hget(k.stats, 'L1:grouped'))).toBe(0);
  expect(Number(await redis.hget(k.stats, 'L1:dropped'))).toBe(2);
});

test('held: four workers claiming at once on four connections never exceed a cap of 3', async () => {
  const { prefix, k } = await fresh('ga-cap-race');
  const clients = [0, 1, 2, 3].map(() => new Redis(suite.server.url));
  try {
    const stores = clients.map((c) => new Store(c, prefix));
    await Promise.all(stores.map((s, i) => s.register(`w${i}`, LEASE)));
    for (let i = 0; i < 60; i++) await send(stores[0], `/a${i}`, i % 2 ? 'a' : 'b');
    const sel = selection({ groupConcurrency: 3 });
    let peak = 0;
    let started = 0;
    await Promise.all(
      stores.map(async (s, i) => {
        const mine: Job[] = [];
        for (let round = 0; round < 80 && started < 60; round++) {
          const claimed = await s.claim(`w${i}`, 2, 2, sel, LEASE);
          if (claimed === 'lost') throw new Error('lost');
          for (const r of claimed.runs) mine.push(decodeJob(r.token, r.payload));
          started += claimed.runs.length;
          const counted = await clients[i].hgetall(k.groupsRunning);
          for (const n of Object.values(counted)) peak = Math.max(peak, Number(n));
          if (mine.length > 0 && round % 2 === 1) await s.finish(`w${i}`, mine.splice(0, 1).map(done));
          await sleep(1);
        }
        await s.finish(`w${i}`, mine.map(done));
      }),
    );
    expect(started).toBe(60);
    expect(peak).toBeLessThanOrEqual(3);
    await expectGroupInvariants(prefix);
  } finally {
    for (const c of clients) c.disconnect();
  }
});

test('held: `last` inside a group — a parked key is released by every way a run ends, newest wins, one run at a time', async () => {
  const { store, prefix, k } = await fresh('ga-last-ends');
  const sel = selection({ groupConcurrency: 10 });
  const runOf = async (url: string) => (await claim(store, 5, sel)).find((j) => j.url === url);
  // retry: the parked newer message runs; the retry of the older is superseded
  await send(store, '/r1', 'a', 'last', { key: 'k' });
  const r1 = (await runOf('/r1'))!;
  await send(store, '/r2', 'a', 'last', { key: 'k' });
  expect(await claim(store, 5, sel)).toEqual([]); // parked behind the run: never two at once
  expect(await store.fail('w', r1.token, { retryDelayMs: 0 }, 100)).toBe('superseded');
  const r2 = (await runOf('/r2'))!;
  expect(r2).toBeDefined();
  // dead: the parked message runs
  await send(store, '/r3', 'a', 'last', { key: 'k' });
  expect(await store.fail('w', r2.token, { status: 500, error: 'x' }, 100)).toBe('dead');
  const r3 = (await runOf('/r3'))!;
  // recovery of a dead worker: the parked message wins over the recovered older run
  await store.requeueWorker('w', 'shutdown', 5, 100);
  await store.register('w2', 200);
  await send(store, '/r4', 'a', 'last', { key: 'k' });
  expect(r3).toBeDefined();
  const taken = await claim(store, 5, sel, 'w2', 200);
  expect(taken.map((j) => j.url)).toEqual(['/r4']);
  await send(store, '/r5', 'a', 'last', { key: 'k' });
  await sleep(250);
  await store.requeueWorker('w2', 'expired', 5, 100);
  await store.register('w3', LEASE);
  const after = await claim(store, 5, sel, 'w3');
  expect(after.map((j) => j.url)).toEqual(['/r5']);
  expect(await claim(store, 5, sel, 'w3')).toEqual([]);
  await store.finish('w3', after.map(done));
  expect(await redis.exists(k.running, k.groupNewest(1, 'a'))).toBe(0);
  await expectGroupInvariants(prefix);
});

test('held: pausing a level with groups holds them; resuming wakes a worker and the round goes on', async () => {
  const { store, prefix, k } = await fresh('ga-pause');
  await store.setPaused(1, true);
  for (let i = 0; i < 3; i++) await send(store, `/a${i}`, 'a');
  await send(store, '/d0');
  expect(await claim(store, 10)).toEqual([]);
  expect(await redis.zrange(k.groupRing(1), 0, -1)).toEqual(['a']);
  await redis.del(k.wake(1));
  await store.setPaused(1, false);
  expect(await redis.llen(k.wake(1))).toBe(1);
  expect((await claim(store, 10)).map((j) => j.url)).toEqual(['/d0', '/a0', '/a1', '/a2']);
  await expectGroupInvariants(prefix);
});

test('held: the level-2 switch counts grouped messages and reopens as the claim drains them', async () => {
  const { store, prefix, k } = await fresh('ga-switch');
  const limits = { capacity: 10, discardThreshold: 6 };
  const outcomes: string[] = [];
  for (let i = 0; i < 10; i++) outcomes.push((await store.enqueue(asyncCall(`/x${i}`, 2, 'execute', { group: `g${i % 3}` }), limits)).outcome);
  // 80% of 10: the ninth takes the backlog over 8, the tenth is refused
  expect(outcomes).toEqual([...Array(9).fill('queued'), 'refused']);
  expect(await redis.get(k.l2Active)).toBe('0');
  const sel = selection({ capacity: 10 });
  await claim(store, 3, sel);
  expect(await redis.get(k.l2Active)).toBe('0'); // 6 waiting: not under 60%
  await claim(store, 1, sel);
  expect(await redis.get(k.l2Active)).toBe('1');
  expect((await store.enqueue(asyncCall('/y', 2, 'execute', { group: 'g0' }), limits)).outcome).toBe('queued');
  await expectGroupInvariants(prefix);
});

test('held: 10,000 groups — each served once per round, a claim stays cheap, capped groups cost a bounded claim', async () => {
  const { store, prefix, k } = await fresh('ga-10k');
  const groups = 10_000;
  for (let from = 0; from < groups; from += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, i) => send(store, `/g${from + i}`, `t${from + i}`)));
  }
  expect(await redis.zcard(k.groupRing(1))).toBe(groups);
  const seen = new Set<string>();
  let slowest = 0;
  for (;;) {
    const t0 = performance.now();
    const runs = await claim(store, 200, selection({ groupConcurrency: 1 }));
    slowest = Math.max(slowest, performance.now() - t0);
    if (runs.length === 0) break;
    for (const r of runs) {
      expect(seen.has(r.group!)).toBe(false);
      seen.add(r.group!);
    }
  }
  expect(seen.size).toBe(groups);
  // All 10,000 at their cap with a message each waiting: a claim passes 1024 over and stops.
  for (let from = 0; from < groups; from += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, i) => send(store, `/h${from + i}`, `t${from + i}`)));
  }
  const t0 = performance.now();
  expect(await claim(store, 200, selection({ groupConcurrency: 1 }))).toEqual([]);
  const cappedMs = performance.now() - t0;
  expect({ slowest: slowest < 250, cappedMs: cappedMs < 250 }).toEqual({ slowest: true, cappedMs: true });
  await expectGroupInvariants(prefix);
}, 180_000);
