// The same inputs through the Lua that applies the queueing rules in Redis and through their
// TypeScript statement (shared/policy.ts): the weighted choice of a claim, and the level-2
// switch of enqueue and claim. Random sequences (fast-check), each on a fresh prefix.
import fc from 'fast-check';
import Redis from 'ioredis';
import { decodeJob } from '../../shared/store/format/job';
import { admitLevel2, level2ActiveAfterClaim, pickLevel, type Credits, type LevelChoice } from '../../shared/policy';
import { Store } from '../../shared/store/store';
import { uniquePrefix } from '../helpers/redis';
import { asyncCall, suiteRedis } from '../helpers/store-calls';

const LEASE = 60_000;
const suite = suiteRedis();
let redis: Redis;
beforeAll(() => ({ redis } = suite));

const call = (level: 1 | 2, i: number) => asyncCall(`/p${i}`, level, 'execute');

test('the weighted choice: a claim of one job at a time picks the level the TypeScript rule picks (40 random backlogs and weights)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 6 }),
      fc.boolean(),
      async (n1, n2, w1, w2, strict) => {
        const store = new Store(redis, uniquePrefix('policy'));
        const admission = { capacity: 10_000, discardThreshold: 10_000 };
        for (let i = 0; i < n1; i++) await store.enqueue(call(1, i), admission);
        for (let i = 0; i < n2; i++) await store.enqueue(call(2, i), admission);
        await store.register('w', LEASE);
        const selection = { weights: [w1, w2] as [number, number], strict, capacity: 10_000 };
        const fromLua: LevelChoice[] = [];
        for (;;) {
          const claimed = await store.claim('w', 1, 1, selection, LEASE);
          if (claimed === 'lost') throw new Error('lost');
          if (claimed.runs.length === 0) break;
          fromLua.push(decodeJob(claimed.runs[0].token, claimed.runs[0].payload).level);
        }
        const fromRule: LevelChoice[] = [];
        let credits: Credits = { 1: 0, 2: 0 };
        const left = { 1: n1, 2: n2 };
        for (;;) {
          const pick = pickLevel(credits, [w1, w2], { 1: left[1] > 0, 2: left[2] > 0 }, strict);
          if (pick.level === null) break;
          credits = pick.credits;
          left[pick.level]--;
          fromRule.push(pick.level);
        }
        expect(fromLua).toEqual(fromRule);
      },
    ),
    { numRuns: 40 },
  );
}, 60_000);

test('the level-2 switch: random enqueues and claims give the answers and the state the TypeScript rule gives (40 random sequences)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 5, max: 30 }),
      fc.array(fc.constantFrom('enqueue', 'claim'), { minLength: 1, maxLength: 80 }),
      async (capacity, steps) => {
        const store = new Store(redis, uniquePrefix('switch'));
        await store.register('w', LEASE);
        const admission = { capacity, discardThreshold: 10_000 };
        const selection = { weights: [3, 1] as [number, number], strict: false, capacity };
        let active = true;
        let backlog = 0;
        let i = 0;
        for (const step of steps) {
          if (step === 'enqueue') {
            const expected = admitLevel2(active, backlog, capacity);
            const { outcome } = await store.enqueue(call(2, i++), admission);
            expect([step, outcome]).toEqual([step, expected.admitted ? 'queued' : 'refused']);
            if (expected.admitted) backlog++;
            active = expected.activeAfter;
          } else {
            // This worker never blocks between steps: its registration as idle is stale at once, so
            // no enqueue hands it a job past the queues (a hand-off is not part of this rule).
            const claimed = await store.claim('w', 1, 1, selection, LEASE, -1);
            if (claimed === 'lost') throw new Error('lost');
            expect(claimed.runs.length).toBe(backlog > 0 ? 1 : 0);
            if (backlog > 0) backlog--;
            active = level2ActiveAfterClaim(active, backlog, capacity);
          }
          expect([step, (await redis.get(store.keys.l2Active)) !== '0']).toEqual([step, active]);
        }
      },
    ),
    { numRuns: 40 },
  );
}, 120_000);
