// Attacks on the tenant groups (docs/design.md, "Tenants"), at the store's level against a real
// Redis. Each test names the promise it attacks. A test marked FINDING fails on the code it was
// written against: the promise does not hold there (the comment says where the cause is). The
// others are attacks that held: they stay as regression tests.
import Redis from 'ioredis';
import { checkDeployment, formatReport } from '../../shared/store/check';
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
// FINDINGS: these fail on the code they attack.
// ---------------------------------------------------------------------------------------------

// FINDING (promise: lookups/deletes and dead requeue of grouped jobs; `last` newest-wins inside a
// group). requeueDead.lua:20 reads the key's newest mark in the level's hash
// (K['L<n>:last:newest']), never the group's ({p}:L<n>:g:<g>:last:newest, where enqueue and bury
// keep it): a dead grouped `last` message is always answered `superseded` and dropped, even when
// it is its key's newest; and the group's newest mark is left pointing at a job that is gone.
test("FINDING: a dead grouped `last` message that is still its key's newest can be requeued", async () => {
  const { store, k } = await fresh('ga-dead-last');
  const sent = await send(store, '/v1', 'a', 'last', { key: 'k' });
  const [run] = await claim(store, 1);
  expect(await store.fail('w', run.token, { status: 500, error: 'boom' }, 100)).toBe('dead');
  expect(await redis.hget(k.groupNewest(1, 'a'), 'k')).toBe(sent.id); // the mark stays while dead (bury)
  expect(await store.requeueDead(sent.id)).toBe('requeued');
  const [again] = await claim(store, 1);
  expect([again?.url, again?.group, again?.key]).toEqual(['/v1', 'a', 'k']);
});

// FINDING (promise: deletes of grouped jobs leave nothing behind; newest marks point to live
// messages — the checker's invariant 4). deleteJob.lua:46 calls gone(level, policy, key) without
// the group for a job found in the delayed set, so forgetNewest (helpers/last/forgetNewest.lua)
// looks in the level's newest hash: the group's mark for the key stays, naming a deleted job.
test("FINDING: deleting a delayed grouped `last` message forgets its key's newest mark", async () => {
  const { store, k } = await fresh('ga-del-delayed');
  const sent = await send(store, '/v1', 'a', 'last', { key: 'k', delay: 60 });
  expect(await redis.hget(k.groupNewest(1, 'a'), 'k')).toBe(sent.id);
  expect(await store.deleteJob(sent.id)).toBe('deleted');
  expect(await redis.hget(k.groupNewest(1, 'a'), 'k')).toBeNull();
});

// FINDING (promise: never more starts than the rate allows, +1 per window — docs/protocol.md:
// "no window of W seconds sees more than R·W + 1 starts"). claimJobs.lua:150 charges
// tat = max(tat, now - interval/2) + interval: a group that was idle (tat in the past, or never
// set) gets tat = now + interval/2, so its second start comes half an interval after its first.
// Two starts 50 ms apart at 10/s: R·W + 1 = 1.5.
test('FINDING: a rate of 10/s never starts a group twice within 100 ms (R·W + 1 per window)', async () => {
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
      const allowed = rate * windowMs + 1;
      if (j - i + 1 > allowed && j - i + 1 - allowed > worst.starts - worst.allowed) Object.assign(worst, { starts: j - i + 1, windowMs, allowed });
    }
  }
  expect(worst).toEqual({ starts: 0, windowMs: 0, allowed: 0 });
});

// FINDING (promise: `last` inside a group — newest wins). A message sent with a delay while an
// older message of its key runs is its key's newest (enqueue.lua:144 marks it), but when it is
// due, requeue (helpers/lines/requeue.lua:11-12) drops it as `superseded` because the key is
// running: the older run's result stands and the newest message never runs. Its newest mark is
// left naming a job that is gone. (Without a delay the same message is parked and runs after.)
test('FINDING: a delayed grouped `last` message that comes due while its key runs is not lost', async () => {
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

// FINDING (promise: the default group takes its turn in the same round and is never capped or
// limited; no group with work is left out). With more than 1024 capped groups ahead of the
// default group's stamp, readRound (claimJobs.lua:158-175) reads the ring 16 × 64 members, never
// reaches the default group's place (it is only put in the list before a member whose stamp is
// at or above its own, or at the ring's end), and popLevel returns nil (claimJobs.lua:186): the
// claim takes nothing, marks the level emptied (no baton), while ungrouped work waits. The
// default group is starved for as long as those groups stay at their cap.
test('FINDING: 1100 groups at their cap do not starve the (never capped) default group', async () => {
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

// FINDING (promise: a group with work waiting is never starved forever — partial outage: a
// failover to a replica whose clock is behind the old master's). Ring stamps are Redis µs
// (joinRing: TIME; a served group: the claim's TIME + picks, claimJobs.lua:101/192/207) and are
// never kept above the highest stamp already in the ring. Stamps written under a clock that ran
// ahead stay above every stamp the new clock writes: such a group is served only once no other
// group has work. The old master's stamps are written here directly, as replication leaves them.
test('FINDING: a group whose stamp was written by a clock ahead (failover) still gets its turn', async () => {
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

// ---------------------------------------------------------------------------------------------
// Attacks that held: regression tests.
// ---------------------------------------------------------------------------------------------

// FINDING (promise: every test ends with `switchyard check` finding zero problems, and --repair
// only repairs what is wrong). The checker (shared/store/check/, checkState.lua) knows nothing of
// groups: it does not read the groups' queues, nor the `G<n>:<g>\n<key>` fields of {p}:running.
// On a state the scripts keep valid it reports a grouped waiting job's index entry as
// INDEX_DANGLING, a grouped `last` run as RUN_KEY_NOT_HELD and its held key as HELD_KEY_ORPHANED;
// --repair then drops the index entries of grouped jobs waiting in line, so a caller's id is
// forgotten and the same call sent again is queued twice (enqueue.lua:57 finds no entry).
test('FINDING: the checker finds nothing wrong with a valid grouped state', async () => {
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

test("FINDING: `check --repair` on a valid grouped state does not forget a caller's id (no duplicate run)", async () => {
  const { store, prefix } = await fresh('ga-checker-repair');
  await send(store, '/own', 'a', 'execute', { id: 'own-1' });
  await checkDeployment(new Queues(redis, prefix, 1), { repair: true });
  // The same call sent again (a caller's retry after an unknown outcome): still known.
  expect((await send(store, '/own', 'a', 'execute', { id: 'own-1' })).outcome).toBe('duplicate');
  expect((await claim(store, 5)).map((j) => j.url)).toEqual(['/own']);
});
