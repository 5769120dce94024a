// The turn of tenant groups inside a level (docs/design.md, "Tenants") through the Lua that
// applies it (claimJobs.lua) and through its TypeScript statement (shared/policy.ts,
// pickGroup), driven with the same random sequences (fast-check): messages of random groups
// (the default group among them), caps of the workers' flag and of single groups, claims of one
// job and of many, runs finished between claims. Rates depend on Redis's clock: the last test
// pins what the design says of them.
import fc from 'fast-check';
import Redis from 'ioredis';
import { decodeJob, type Job } from '../../shared/store/format/job';
import { pickGroup, type GroupRound } from '../../shared/policy';
import { Store, type SelectionOptions } from '../../shared/store/store';
import { uniquePrefix } from '../helpers/redis';
import { asyncCall, suiteRedis } from '../helpers/store-calls';

const LEASE = 60_000;
const suite = suiteRedis();
let redis: Redis;
beforeAll(() => ({ redis } = suite));

const admission = { capacity: 100_000, discardThreshold: 100_000 };
const NAMED = ['a', 'b', 'c', 'd', 'e'];

type Step =
  | { kind: 'enqueue'; group: string | null; count: number }
  | { kind: 'claim'; n: number }
  | { kind: 'finish'; which: boolean[] }
  | { kind: 'cap'; group: string; cap: number | null };

const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('enqueue' as const), group: fc.constantFrom(null, ...NAMED), count: fc.integer({ min: 1, max: 4 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('claim' as const), n: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 12 })) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('finish' as const), which: fc.array(fc.boolean(), { maxLength: 24 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('cap' as const), group: fc.constantFrom(...NAMED), cap: fc.option(fc.integer({ min: 0, max: 3 })) }), weight: 1 },
);

/** The order of a round as the claims see it: the ring's groups by stamp, the default group ('') at its place. */
function turnOrder(ring: Array<[string, number]>, defaultStamp: number): string[] {
  const sorted = [...ring].sort(([a, sa], [b, sb]) => sa - sb || (a < b ? -1 : a > b ? 1 : 0));
  const at = sorted.filter(([, s]) => s < defaultStamp).length;
  const names = sorted.map(([g]) => g);
  names.splice(at, 0, '');
  return names;
}

async function turnOrderInRedis(store: Store): Promise<string[]> {
  const raw = await redis.zrange(store.keys.groupRing(1), 0, -1, 'WITHSCORES');
  const ring: Array<[string, number]> = [];
  for (let i = 0; i < raw.length; i += 2) ring.push([raw[i], Number(raw[i + 1])]);
  return turnOrder(ring, Number((await redis.hget(store.keys.sched, 'turn:L1')) ?? 0));
}

test('the turn of groups: claims of one and of many take the messages pickGroup picks, and leave the round and the running counts it leaves (200 random sequences)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 3 }), fc.array(step, { minLength: 1, maxLength: 60 }), async (flagCap, steps) => {
      const store = new Store(redis, uniquePrefix('group-rules'));
      await store.register('w', LEASE);
      const selection: SelectionOptions = { weights: [3, 1], strict: false, capacity: 100_000, groupConcurrency: flagCap };
      // The model: the queues (FIFO per group), the round, the runs, the caps; stamps from a counter.
      const queues = new Map<string | null, string[]>([[null, []], ...NAMED.map((g) => [g, []] as [string, string[]])]);
      let round: GroupRound = { ring: {}, defaultStamp: 0 };
      const running: Record<string, number> = {};
      const own: Record<string, number> = {};
      let runs: Array<{ job: Job; group: string | null }> = [];
      let clock = 0;
      let sent = 0;
      for (const s of steps) {
        const label = JSON.stringify(s);
        if (s.kind === 'enqueue') {
          for (let i = 0; i < s.count; i++) {
            const url = `/${s.group ?? 'default'}-${sent++}`;
            await store.enqueue(asyncCall(url, 1, 'execute', s.group === null ? {} : { group: s.group }), admission);
            queues.get(s.group)!.push(url);
            if (s.group !== null && !(s.group in round.ring)) round = { ...round, ring: { ...round.ring, [s.group]: ++clock } };
          }
        } else if (s.kind === 'cap') {
          if (s.cap === null) {
            await redis.hdel(store.keys.groupsLimits, s.group);
            delete own[s.group];
          } else {
            await redis.hset(store.keys.groupsLimits, s.group, `${s.cap}:`);
            own[s.group] = s.cap;
          }
        } else if (s.kind === 'finish') {
          const ending = runs.filter((_, i) => s.which[i]);
          if (ending.length > 0)
            expect(
              await store.finish(
                'w',
                ending.map((r) => ({ job: r.job, outcome: 'done' as const, status: 200 })),
              ),
            ).toBe(ending.length);
          for (const r of ending) if (r.group !== null && --running[r.group] === 0) delete running[r.group];
          runs = runs.filter((_, i) => !s.which[i]);
        } else {
          // A worker that never blocks: no message is handed to it past the claim.
          const claimed = await store.claim('w', s.n, s.n, selection, LEASE, -1);
          if (claimed === 'lost') throw new Error('lease lost');
          const fromLua = claimed.runs.map((r) => decodeJob(r.token, r.payload));
          const fromRule: string[] = [];
          const caps = Object.fromEntries(NAMED.map((g) => [g, own[g] ?? flagCap]));
          while (fromRule.length < s.n) {
            const waiting = Object.fromEntries(NAMED.map((g) => [g, queues.get(g)!.length]));
            const next = pickGroup(round, { waiting, defaultWaiting: queues.get(null)!.length, running, caps }, ++clock);
            round = next.round;
            if (!next.pick) break;
            fromRule.push(queues.get(next.pick.group)!.shift()!);
            if (next.pick.group !== null) running[next.pick.group] = (running[next.pick.group] ?? 0) + 1;
          }
          expect([label, fromLua.map((j) => j.url)]).toEqual([label, fromRule]);
          runs.push(...fromLua.map((job) => ({ job, group: job.group ?? null })));
        }
        // The state both leave: the round's order and the running counts.
        expect([label, await turnOrderInRedis(store)]).toEqual([label, turnOrder(Object.entries(round.ring), round.defaultStamp)]);
        expect([label, await redis.hgetall(store.keys.groupsRunning)]).toEqual([
          label,
          Object.fromEntries(Object.entries(running).map(([g, n]) => [g, String(n)])),
        ]);
      }
    }),
    { numRuns: 200 },
  );
}, 120_000);

// docs/design.md: the limiter keeps a late claim's schedule for up to half an interval, so no two
// starts of a group are closer than half an interval (1/s: 500 ms), and the rate holds on average.
test('a group with a rate is never started twice within half its interval (1/s: the second start no sooner than 500 ms after the first)', async () => {
  const store = new Store(redis, uniquePrefix('group-rate'));
  await store.register('w', LEASE);
  for (let i = 0; i < 3; i++) await store.enqueue(asyncCall(`/a${i}`, 1, 'execute', { group: 'a' }), admission);
  const selection: SelectionOptions = { weights: [3, 1], strict: false, capacity: 100_000, groupRate: 1 };
  const redisMs = async (): Promise<number> => {
    const [s, us] = await redis.time();
    return Number(s) * 1000 + Number(us) / 1000;
  };
  const urls = async (): Promise<string[]> => {
    const claimed = await store.claim('w', 3, 3, selection, LEASE, -1);
    if (claimed === 'lost') throw new Error('lease lost');
    return claimed.runs.map((r) => decodeJob(r.token, r.payload).url);
  };
  const before = await redisMs();
  expect(await urls()).toEqual(['/a0']);
  await new Promise((r) => setTimeout(r, 300));
  const second = await urls();
  const after = await redisMs();
  // Both claims ran within half an interval of each other (on Redis's clock): the second takes nothing.
  expect(after - before).toBeLessThan(500);
  expect(second).toEqual([]);
  // Past it, the group starts again; then not before a whole interval from the start it was due.
  await new Promise((r) => setTimeout(r, 300));
  expect(await urls()).toEqual(['/a1']);
  expect(await urls()).toEqual([]);
});

// docs/design.md: "inside the chosen group its three queues take turns as the level's do" (the
// group's turn rides in the fraction of its ring score).
test("a group's execute, last and discard queues take turns as the default group's do", async () => {
  const store = new Store(redis, uniquePrefix('group-queues'));
  await store.register('w', LEASE);
  const policies = ['execute', 'last', 'discard'] as const;
  const sequenceOf = async (group?: string): Promise<string[]> => {
    for (const policy of policies)
      for (let i = 0; i < 4; i++)
        await store.enqueue(
          asyncCall(`/${policy}${i}`, 1, policy, { ...(policy === 'last' && { key: `k${i}` }), ...(group !== undefined && { group }) }),
          admission,
        );
    const taken: string[] = [];
    for (;;) {
      const claimed = await store.claim('w', 1, 1, { weights: [3, 1], strict: false, capacity: 100_000 }, LEASE, -1);
      if (claimed === 'lost') throw new Error('lease lost');
      if (claimed.runs.length === 0) return taken;
      taken.push(decodeJob(claimed.runs[0].token, claimed.runs[0].payload).policy);
    }
  };
  const level = await sequenceOf();
  expect(level).toEqual(['execute', 'last', 'discard', 'execute', 'last', 'discard', 'execute', 'last', 'discard', 'execute', 'last', 'discard']);
  expect(await sequenceOf('a')).toEqual(level);
});

// docs/design.md: "Exact: … FIFO inside a group"; requeueWorker hands a dead worker's runs back
// "at the front", in the order they were claimed (by run token; the worker's hash has no order of
// its own), in the default group as in a named one.
test("recovery hands a dead worker's runs back at the front in their order, in the default group and in a named group", async () => {
  const store = new Store(redis, uniquePrefix('group-recover'));
  await store.register('w', LEASE);
  await store.register('dead', 300);
  for (const group of [undefined, 'a']) {
    const urls = Array.from({ length: 6 }, (_, i) => `/${group ?? 'default'}${i}`);
    for (const url of urls) await store.enqueue(asyncCall(url, 1, 'execute', group === undefined ? {} : { group }), admission);
    const selection: SelectionOptions = { weights: [3, 1], strict: false, capacity: 100_000 };
    const taken = await store.claim('dead', 6, 6, selection, 300, -1);
    if (taken === 'lost') throw new Error('lease lost');
    expect(taken.runs.map((r) => decodeJob(r.token, r.payload).url)).toEqual(urls);
    await new Promise((r) => setTimeout(r, 350));
    expect(await store.requeueWorker('dead', 'expired', 5, 100)).toBe(6);
    const again = await store.claim('w', 6, 6, selection, LEASE, -1);
    if (again === 'lost') throw new Error('lease lost');
    expect([group, again.runs.map((r) => decodeJob(r.token, r.payload).url)]).toEqual([group, urls]);
    await store.register('dead', 300);
  }
});
