// The queueing rules stated in TypeScript (shared/policy.ts), pinned without Redis; the Lua that
// applies them in Redis is compared with them in test/integration/policy-rules.test.ts.
import fc from 'fast-check';
import { admitLevel2, level2ActiveAfterClaim, level2Room, pickLevel, type Credits, type LevelChoice } from '../../shared/policy';

function picks(n: number, weights: [number, number], has = { 1: true, 2: true }, strict = false): LevelChoice[] {
  let credits: Credits = { 1: 0, 2: 0 };
  const out: LevelChoice[] = [];
  for (let i = 0; i < n; i++) {
    const pick = pickLevel(credits, weights, has, strict);
    credits = pick.credits;
    out.push(pick.level!);
  }
  return out;
}

test('3:1 picks 1, 1, 2, 1 — exactly three of every four while both levels wait', () => {
  expect(picks(8, [3, 1])).toEqual([1, 1, 2, 1, 1, 1, 2, 1]);
});

test('any weights: over every full cycle the picks are in the ratio of the weights, and credits stay bounded', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 5 }), (w1, w2, cycles) => {
      const sequence = picks((w1 + w2) * cycles, [w1, w2]);
      expect(sequence.filter((l) => l === 1)).toHaveLength(w1 * cycles);
      let credits: Credits = { 1: 0, 2: 0 };
      for (let i = 0; i < 200; i++) {
        credits = pickLevel(credits, [w1, w2], { 1: true, 2: true }, false).credits;
        expect(Math.abs(credits[1]) + Math.abs(credits[2])).toBeLessThanOrEqual(2 * (w1 + w2));
      }
    }),
  );
});

test('an empty level earns nothing and gives its share away; strict always takes level 1; nothing waiting picks nothing', () => {
  const credits = { 1: 5, 2: -5 };
  expect(pickLevel(credits, [3, 1], { 1: false, 2: true }, false)).toEqual({ level: 2, credits });
  expect(pickLevel(credits, [3, 1], { 1: true, 2: false }, false)).toEqual({ level: 1, credits });
  expect(pickLevel(credits, [3, 1], { 1: false, 2: false }, false)).toEqual({ level: null, credits });
  expect(picks(5, [1, 100], { 1: true, 2: true }, true)).toEqual([1, 1, 1, 1, 1]);
});

test('the 80/60 switch with capacity 100: the 81st waiting message turns it off, the 82nd is refused, under 60 it takes again', () => {
  expect(admitLevel2(true, 79, 100)).toEqual({ admitted: true, activeAfter: true });
  expect(admitLevel2(true, 80, 100)).toEqual({ admitted: true, activeAfter: false });
  expect(admitLevel2(false, 81, 100)).toEqual({ admitted: false, activeAfter: false });
  expect(admitLevel2(false, 60, 100)).toEqual({ admitted: false, activeAfter: false });
  expect(admitLevel2(false, 59, 100)).toEqual({ admitted: true, activeAfter: true });
  expect(level2ActiveAfterClaim(false, 60, 100)).toBe(false);
  expect(level2ActiveAfterClaim(false, 59, 100)).toBe(true);
});

test('level-2 room: never the last reserve slots, never more than free, none for a worker without level 2', () => {
  expect(level2Room({ free: 10, concurrency: 10, reserve: 1, runningLevel2: 0, takesLevel2: true })).toBe(9);
  expect(level2Room({ free: 3, concurrency: 10, reserve: 1, runningLevel2: 0, takesLevel2: true })).toBe(3);
  expect(level2Room({ free: 5, concurrency: 10, reserve: 1, runningLevel2: 5, takesLevel2: true })).toBe(4);
  expect(level2Room({ free: 1, concurrency: 10, reserve: 1, runningLevel2: 9, takesLevel2: true })).toBe(0);
  expect(level2Room({ free: 10, concurrency: 10, reserve: 0, runningLevel2: 0, takesLevel2: false })).toBe(0);
});
