// The checker over tenant groups' structures (docs/design.md, "Tenants"; invariant 9): a state
// written with plain commands as the scripts would leave it checks clean; then each problem is
// made by hand, the checker finds it (and only it), --repair repairs what it may and a second
// check is clean.
import Redis from 'ioredis';
import { readDeploymentGroups, summarizeGroups } from '../../shared/ops/groups';
import { checkDeployment, type CheckReport, type ProblemCode } from '../../shared/store/check';
import { decodeJob } from '../../shared/store/format/job';
import { groupOfKey, groupOfPayload } from '../../shared/store/check/groups';
import type { Keys } from '../../shared/store/keys';
import type { Level } from '../../shared/levels';
import { Queues } from '../../shared/store/queues';
import { uniquePrefix } from '../helpers/redis';
import { asyncCall, suiteRedis } from '../helpers/store-calls';

const suite = suiteRedis();
let redis: Redis;
beforeAll(() => ({ redis } = suite));

let seq = 0;
function payload(level: Level, group: string | undefined, policy: 'execute' | 'discard' | 'last' = 'execute', key?: string, id = `j${seq++}`): string {
  const route = `${policy === 'execute' ? '' : `,"policy":"${policy}"`}${key !== undefined ? `,"key":${JSON.stringify(key)}` : ''}`;
  return `{"id":"${id}","at":1000,"level":${level}${route}${group ? `,"group":"${group}"` : ''},"ttl":60000,"method":"POST","url":"/g"}`;
}

const WORKER = 'w1';

/**
 * A clean state: groups a (level 1, execute and a `last` key in line, one run of a `last` key
 * holding it, both keys' newest marks), b (level 2, discard; one run), c (running only), a waiting grouped job with the
 * caller's id indexed, and an ungrouped message in the level's own queue.
 */
async function cleanState(queues: Queues): Promise<Keys> {
  const k = queues.keysOf(0);
  const [sec] = await redis.time();
  const now = Number(sec) * 1000;
  const m = redis.multi();
  m.zadd(k.workers, now + 600_000, WORKER);
  m.lpush(k.groupQueue(1, 'a', 'execute'), payload(1, 'a'), payload(1, 'a'), payload(1, 'a', 'execute', undefined, 'callers-id'));
  m.hset(k.jobs, 'callers-id', 'wL1:execute@a');
  m.hset(k.groupQueue(1, 'a', 'last'), 'k1', payload(1, 'a', 'last', 'k1', 'last-a'));
  m.hset(k.jobs, 'last-a', 'wL1:last@a\nk1');
  m.lpush(k.groupOrder(1, 'a'), 'k1');
  // Each key's newest accepted message: the one waiting (k1), the one running (k2).
  m.hset(k.groupNewest(1, 'a'), 'k1', 'last-a', 'k2', 'run-a');
  m.zadd(k.groupRing(1), 100, 'a');
  m.lpush(k.groupQueue(2, 'b', 'discard'), payload(2, 'b', 'discard'));
  m.zadd(k.groupRing(2), 101, 'b');
  m.hset(k.stats, 'L1:grouped', 4, 'L2:grouped', 1);
  // Runs: a's `last` key k2 (held under its group's name), b's and c's.
  m.hset(
    k.workerJobs(WORKER),
    '11',
    payload(1, 'a', 'last', 'k2', 'run-a'),
    '12',
    payload(2, 'b', 'execute', undefined, 'run-b'),
    '13',
    payload(1, 'c', 'execute', undefined, 'run-c'),
  );
  m.hset(k.jobs, 'run-a', `r${now}:11:${WORKER}`, 'run-b', `r${now}:12:${WORKER}`, 'run-c', `r${now}:13:${WORKER}`);
  m.hset(k.running, 'G1:a\nk2', '11');
  m.hset(k.groupsRunning, 'a', 1, 'b', 1, 'c', 1);
  m.set(k.runs, 20);
  m.lpush(k.queue(1, 'execute'), payload(1, undefined));
  await m.exec();
  return k;
}

const codes = (r: CheckReport): ProblemCode[] => r.problems.map((p) => p.code).sort();
const lines = (r: CheckReport): string => r.problems.map((p) => `${p.code}: ${p.message}`).join('\n');

test('a clean state with groups gives no problem, and counts the grouped jobs; a ring member with nothing left is none either', async () => {
  const queues = new Queues(redis, uniquePrefix('gchk'));
  const k = await cleanState(queues);
  // The claim that takes a group's last message leaves it in the ring, and removes it when it next reaches it.
  await redis.zadd(k.groupRing(2), 5, 'a');
  const report = await checkDeployment(queues);
  expect(lines(report)).toBe('');
  expect(report.ok).toBe(true);
  expect(report.counts).toMatchObject({ waiting: 6, running: 3, groupLevels: 2 });
});

const CASES: Array<{ name: string; code: ProblemCode; repairable: boolean; corrupt(k: Keys): Promise<unknown> }> = [
  {
    name: 'a group with messages in line outside the ring',
    code: 'GROUP_NOT_IN_RING',
    repairable: true,
    corrupt: (k) => redis.zrem(k.groupRing(1), 'a'),
  },
  {
    name: 'a running count above the runs',
    code: 'GROUP_RUNNING_MISMATCH',
    repairable: true,
    corrupt: (k) => redis.hset(k.groupsRunning, 'a', 3),
  },
  {
    name: 'a running count missing',
    code: 'GROUP_RUNNING_MISMATCH',
    repairable: true,
    corrupt: (k) => redis.hdel(k.groupsRunning, 'c'),
  },
  { name: 'a running count for a group with no run', code: 'GROUP_RUNNING_MISMATCH', repairable: true, corrupt: (k) => redis.hset(k.groupsRunning, 'zz', 2) },
  { name: 'L1:grouped off by one', code: 'GROUPED_MISMATCH', repairable: true, corrupt: (k) => redis.hincrby(k.stats, 'L1:grouped', 1) },
  { name: 'L2:grouped missing', code: 'GROUPED_MISMATCH', repairable: true, corrupt: (k) => redis.hdel(k.stats, 'L2:grouped') },
  {
    name: "a payload of another group in a group's queue",
    code: 'GROUP_PAYLOAD_MISPLACED',
    repairable: false,
    corrupt: async (k) => {
      await redis.rpush(k.groupQueue(1, 'a', 'execute'), payload(1, 'b'));
      await redis.hincrby(k.stats, 'L1:grouped', 1);
    },
  },
  {
    // Its group agrees with the queue, its level does not: as in a level's own queue.
    name: "a payload of level 2 in a group's level-1 queue",
    code: 'PAYLOAD_MISPLACED',
    repairable: false,
    corrupt: async (k) => {
      await redis.rpush(k.groupQueue(1, 'a', 'execute'), payload(2, 'a'));
      await redis.hincrby(k.stats, 'L1:grouped', 1);
    },
  },
  {
    name: "a grouped payload in the level's own queue",
    code: 'GROUP_PAYLOAD_MISPLACED',
    repairable: false,
    corrupt: (k) => redis.rpush(k.queue(1, 'execute'), payload(1, 'a')),
  },
  {
    name: 'a grouped `last` run whose key is not held',
    code: 'RUN_KEY_NOT_HELD',
    repairable: false,
    corrupt: (k) => redis.hdel(k.running, 'G1:a\nk2'),
  },
  {
    name: 'a grouped held key no run holds',
    code: 'HELD_KEY_ORPHANED',
    repairable: false,
    corrupt: (k) => redis.hset(k.running, 'G1:a\nk9', '11'),
  },
  {
    name: 'a grouped index entry pointing nowhere',
    code: 'INDEX_DANGLING',
    repairable: true,
    corrupt: (k) => redis.hset(k.jobs, 'gone', 'wL1:execute@a'),
  },
  {
    // The job is in group a's queue: the entry is rewritten to say so, as for a level's queue.
    name: 'a grouped index entry naming the wrong group',
    code: 'INDEX_WRONG',
    repairable: true,
    corrupt: (k) => redis.hset(k.jobs, 'callers-id', 'wL1:execute@b'),
  },
];

describe.each(CASES)('$name', ({ code, repairable, corrupt }) => {
  test(`is ${code}${repairable ? ', repaired' : ''}`, async () => {
    const queues = new Queues(redis, uniquePrefix('gchk'));
    const k = await cleanState(queues);
    await corrupt(k);
    const found = await checkDeployment(queues);
    expect([codes(found), lines(found)]).toEqual([[code], expect.any(String)]);
    expect(found.problems[0].repairable).toBe(repairable);
    if (!repairable) return;
    const repaired = await checkDeployment(queues, { repair: true });
    expect(repaired.repaired.map((p) => p.code)).toEqual([code]);
    expect(lines(await checkDeployment(queues))).toBe('');
  });
});

test('a repaired ring puts the group at the back and wakes a worker; a repaired count deletes the field at 0', async () => {
  const queues = new Queues(redis, uniquePrefix('gchk'));
  const k = await cleanState(queues);
  await redis.zrem(k.groupRing(1), 'a');
  await redis.hset(k.groupsRunning, 'zz', 2);
  const highest = Number((await redis.zrange(k.groupRing(1), -1, -1, 'WITHSCORES'))[1] ?? 0);
  await checkDeployment(queues, { repair: true });
  // At the back: a turn number above every other in the ring.
  expect(Number(await redis.zscore(k.groupRing(1), 'a'))).toBeGreaterThan(highest);
  expect(await redis.llen(k.wake(1))).toBe(1);
  expect(await redis.hexists(k.groupsRunning, 'zz')).toBe(0);
});

test('group keys and payloads are read one way only', () => {
  expect(groupOfKey('{sy}', '{sy}:L1:g:a:last:order')).toEqual({ level: 1, group: 'a' });
  expect(groupOfKey('{sy}', '{sy}:L2:g:x:last:last')).toEqual({ level: 2, group: 'x:last' });
  expect(groupOfKey('{sy}', '{sy}:L1:g:x:last:order:execute')).toEqual({ level: 1, group: 'x:last:order' });
  expect(groupOfKey('{sy}', '{sy}:L1:g::execute')).toBeNull();
  expect(groupOfKey('{sy:0}', '{sy}:L1:g:a:execute')).toBeNull();
  expect(groupOfPayload(payload(1, 'g@x.io', 'last', 'k"1'))).toBe('g@x.io');
  expect(groupOfPayload('{"attempt":2,' + payload(1, 'g').slice(1))).toBe('g');
  expect(groupOfPayload(payload(1, undefined))).toBeUndefined();
  // A "group" inside the content is not the routing prefix's.
  expect(groupOfPayload('{"id":"a","at":1,"level":1,"method":"POST","url":"/","content":{"x":1,"group":"no"}}')).toBeUndefined();
});

describe('over the state the scripts leave', () => {
  const selection = { weights: [3, 1] as const, strict: false, capacity: 100_000, groupConcurrency: 2 };
  const admission = { capacity: 100_000, discardThreshold: 100_000 };

  test('enqueued, claimed (capped), finished, failed and `last` inside groups: clean throughout; the readers agree with it', async () => {
    const queues = new Queues(redis, uniquePrefix('gchk-live'));
    const k = queues.keysOf(0);
    await queues.register('w', 60_000, 0);
    const send = (
      url: string,
      group: string | undefined,
      level: 1 | 2,
      policy: 'execute' | 'last' | 'discard' = 'execute',
      detail: Record<string, unknown> = {},
    ) => queues.enqueue(asyncCall(url, level, policy, { ...(group !== undefined && { group }), ...detail }), admission);
    for (let i = 0; i < 6; i++) await send(`/a${i}`, 'a', 1);
    for (let i = 0; i < 3; i++) await send(`/b${i}`, 'b', 2, 'discard');
    await send('/k1', 'a', 1, 'last', { key: 'k' });
    await send('/k2', 'a', 1, 'last', { key: 'k' });
    await send('/id', 'c', 1, 'execute', { id: 'callers-id' });
    await send('/plain', undefined, 1);
    expect(lines(await checkDeployment(queues))).toBe('');

    const claimed = await queues.claim(0, 'w', 5, 5, selection, 60_000);
    if (claimed === 'lost') throw new Error('lost');
    const runs = claimed.runs.map((r) => decodeJob(r.token, r.payload));
    expect(runs.filter((j) => j.group === 'a').length).toBeLessThanOrEqual(2);
    expect(lines(await checkDeployment(queues))).toBe('');

    const summary = summarizeGroups(await readDeploymentGroups(queues));
    const a = summary.top.find((g) => g.name === 'a')!;
    expect(a.running).toBe(runs.filter((j) => j.group === 'a').length);
    expect(a.limited).toBe(false); // the cap is the workers' flag here, not an override: not known to the reader
    const { total } = await queues.stats();
    expect(total.grouped.L1 + total.grouped.L2).toBe(summary.top.reduce((n, g) => n + g.backlog[1] + g.backlog[2], 0));

    await queues.finish(0, 'w', [{ job: runs[0], outcome: 'done', status: 200 }]);
    expect(await queues.fail(0, 'w', runs[1].token, { status: 500, error: 'boom' }, 100)).toBe('dead');
    expect(lines(await checkDeployment(queues))).toBe('');
    // Drain the rest: every structure empties, the check stays clean.
    for (;;) {
      const more = await queues.claim(0, 'w', 10, 10, { ...selection, groupConcurrency: 0 }, 60_000);
      if (more === 'lost') throw new Error('lost');
      if (more.runs.length === 0) break;
      await queues.finish(
        0,
        'w',
        more.runs.map((r) => ({ job: decodeJob(r.token, r.payload), outcome: 'done' as const, status: 200 })),
      );
    }
    await queues.finish(
      0,
      'w',
      runs.slice(2).map((job) => ({ job, outcome: 'done' as const, status: 200 })),
    );
    expect(lines(await checkDeployment(queues))).toBe('');
    expect(await redis.hlen(k.groupsRunning)).toBe(0);
    expect(summarizeGroups(await readDeploymentGroups(queues)).active).toBe(0);
  });
});

// Invariants 1, 3 and 4 inside the groups: each group's `last` hash, order list and newest marks
// keep what the level's keep, with the same codes and repairs, and a job in a group's queue is
// one more place a job can be (one place per id; an index entry pointing there checked as any).
describe("the groups' `last` structures and the jobs in their queues", () => {
  const selection = { weights: [3, 1] as const, strict: false, capacity: 100_000, groupConcurrency: 10 };
  const admission = { capacity: 100_000, discardThreshold: 100_000 };

  interface LastState {
    queues: Queues;
    k: Keys;
    /** The runs still going: group a's key k1 (level 1), group b's key k1 (level 2), group a's execute job. */
    runs: ReturnType<typeof decodeJob>[];
    /** Job ids by what they are. */
    ids: Record<'aK1Parked' | 'bK1Parked' | 'aK3' | 'cK1' | 'aK4Delayed', string>;
  }

  /**
   * Made by the real scripts: `last` messages of groups a, b (level 2) and c, the same key in
   * each; all claimed; newer messages for the keys still running (parked behind their runs), new
   * keys in line, one delayed; one run finished (its key released with nothing waiting).
   */
  async function lastState(): Promise<LastState> {
    const queues = new Queues(redis, uniquePrefix('gchk-last'));
    const k = queues.keysOf(0);
    await queues.register('w', 60_000, 0);
    const send = async (url: string, group: string, level: 1 | 2, policy: 'execute' | 'last', detail: Record<string, unknown> = {}): Promise<string> => {
      const sent = await queues.enqueue(asyncCall(url, level, policy, { group, ...detail }), admission);
      expect(['queued', 'replaced']).toContain(sent.outcome);
      return sent.id;
    };
    await send('/a-k1', 'a', 1, 'last', { key: 'k1' });
    await send('/a-k2', 'a', 1, 'last', { key: 'k2' });
    await send('/b-k1', 'b', 2, 'last', { key: 'k1' });
    await send('/a-x', 'a', 1, 'execute');
    const claimed = await queues.claim(0, 'w', 10, 10, selection, 60_000);
    if (claimed === 'lost') throw new Error('lost');
    const runs = claimed.runs.map((r) => decodeJob(r.token, r.payload));
    expect(runs.map((j) => j.url).sort()).toEqual(['/a-k1', '/a-k2', '/a-x', '/b-k1']);
    const ids = {
      aK1Parked: await send('/a-k1-v2', 'a', 1, 'last', { key: 'k1' }),
      bK1Parked: await send('/b-k1-v2', 'b', 2, 'last', { key: 'k1' }),
      aK3: await send('/a-k3', 'a', 1, 'last', { key: 'k3' }),
      cK1: await send('/c-k1', 'c', 1, 'last', { key: 'k1' }),
      aK4Delayed: await send('/a-k4', 'a', 1, 'last', { key: 'k4', delay: 60 }),
    };
    const k2 = runs.find((j) => j.url === '/a-k2')!;
    await queues.finish(0, 'w', [{ job: k2, outcome: 'done', status: 200 }]);
    return { queues, k, runs: runs.filter((j) => j !== k2), ids };
  }

  test('a state the scripts made checks clean: parked keys, keys in line, a delayed message, the same key in three groups', async () => {
    const { queues, k, ids } = await lastState();
    // What the check reads is there: a's k1 parked behind its run (not in line), its k3 in line, c's k1 in line.
    expect(await redis.lrange(k.groupOrder(1, 'a'), 0, -1)).toEqual(['k3']);
    expect(await redis.hget(k.groupNewest(1, 'a'), 'k1')).toBe(ids.aK1Parked);
    expect(await redis.hget(k.groupNewest(1, 'a'), 'k4')).toBe(ids.aK4Delayed);
    expect(await redis.hexists(k.running, 'G2:b\nk1')).toBe(1);
    const report = await checkDeployment(queues);
    expect(lines(report)).toBe('');
    // Waiting: a's k1 and k3, b's k1, c's k1; running: three; the marks: a k1 k3 k4, b k1, c k1.
    expect(report.counts).toMatchObject({ waiting: 4, running: 3, delayed: 1, newestMarks: 5 });
  });

  /** Exactly these codes are found (each repairable or not); with repairs, they are repaired and a second check is clean. */
  async function expectFound(queues: Queues, expected: ProblemCode[], repairable: boolean): Promise<CheckReport> {
    const found = await checkDeployment(queues);
    expect([codes(found), lines(found)]).toEqual([[...expected].sort(), expect.any(String)]);
    for (const p of found.problems) expect([p.code, p.repairable]).toEqual([p.code, repairable]);
    if (!repairable) return found;
    const repaired = await checkDeployment(queues, { repair: true });
    expect({ left: lines(repaired), repaired: repaired.repaired.map((p) => p.code).sort() }).toEqual({ left: '', repaired: [...expected].sort() });
    expect(lines(await checkDeployment(queues))).toBe('');
    return found;
  }

  test('LAST_NOT_IN_LINE: a waiting key out of its line, its group out of the ring; the repair puts both back and wakes a worker', async () => {
    const { queues, k } = await lastState();
    await redis.lrem(k.groupOrder(1, 'c'), 0, 'k1');
    await redis.zrem(k.groupRing(1), 'c');
    await redis.del(k.wake(1));
    const found = await expectFound(queues, ['LAST_NOT_IN_LINE'], true);
    expect(found.problems[0].message).toContain(`${k.groupQueue(1, 'c', 'last')} but its key is not in ${k.groupOrder(1, 'c')}`);
    expect(await redis.lrange(k.groupOrder(1, 'c'), 0, -1)).toEqual(['k1']);
    expect(await redis.zscore(k.groupRing(1), 'c')).not.toBeNull();
    expect(await redis.llen(k.wake(1))).toBe(1);
  });

  test('a parked key is no LAST_NOT_IN_LINE while its run holds it; once the run is gone, the orphaned held key is reported, not the parked message', async () => {
    const { queues, k } = await lastState();
    // b's k1 waits parked behind the run holding G2:b\nk1: in no line, and that is right.
    expect(await redis.llen(k.groupOrder(2, 'b'))).toBe(0);
    expect(lines(await checkDeployment(queues))).toBe('');
    // The held key under the level's form (L2:k1) is another key: b's parked message is then in no line and not parked.
    const token = (await redis.hget(k.running, 'G2:b\nk1'))!;
    await redis.hdel(k.running, 'G2:b\nk1');
    await redis.hset(k.running, 'L2:k1', token);
    expect(codes(await checkDeployment(queues))).toEqual(['HELD_KEY_ORPHANED', 'LAST_NOT_IN_LINE', 'RUN_KEY_NOT_HELD']);
  });

  test('LAST_IN_LINE_TWICE: the copy nearest the front stays', async () => {
    const { queues, k } = await lastState();
    await redis.lpush(k.groupOrder(1, 'a'), 'k3');
    await expectFound(queues, ['LAST_IN_LINE_TWICE'], true);
    expect(await redis.lrange(k.groupOrder(1, 'a'), 0, -1)).toEqual(['k3']);
  });

  test('ORDER_WITHOUT_PAYLOAD: a key in a group line with nothing waiting and no run (a key running in another group is no run of it)', async () => {
    const { queues, k } = await lastState();
    // c's k1 is in line; b's k1 runs in level 2: neither makes c's level-2 line hold k1, nor a's level-1 line hold k2 (finished).
    await redis.lpush(k.groupOrder(2, 'c'), 'k1');
    await redis.lpush(k.groupOrder(1, 'a'), 'k2');
    await redis.zadd(k.groupRing(2), 1, 'c');
    await expectFound(queues, ['ORDER_WITHOUT_PAYLOAD', 'ORDER_WITHOUT_PAYLOAD'], true);
    expect(await redis.exists(k.groupOrder(2, 'c'))).toBe(0);
    expect(await redis.lrange(k.groupOrder(1, 'a'), 0, -1)).toEqual(['k3']);
  });

  test("PAYLOAD_MISPLACED: a `last` message under another key's field of its group (its key's mark then points to no message of that key)", async () => {
    const { queues, k, ids } = await lastState();
    const hash = k.groupQueue(1, 'c', 'last');
    await redis.hset(hash, 'k1', (await redis.hget(hash, 'k1'))!.replace('"key":"k1"', '"key":"k9"'));
    const found = await checkDeployment(queues);
    expect(found.problems.map((p) => [p.code, p.repairable, p.ids]).sort()).toEqual([
      ['NEWEST_DANGLING', true, [ids.cK1]],
      ['PAYLOAD_MISPLACED', false, [ids.cK1]],
    ]);
  });

  test("GROUP_PAYLOAD_MISPLACED: a `last` message of group b in group c's hash (its key's mark points to no message of group c)", async () => {
    const { queues, k } = await lastState();
    const hash = k.groupQueue(1, 'c', 'last');
    await redis.hset(hash, 'k1', (await redis.hget(hash, 'k1'))!.replace('"group":"c"', '"group":"b"'));
    const found = await checkDeployment(queues);
    expect(found.problems.map((p) => [p.code, p.repairable]).sort()).toEqual([
      ['GROUP_PAYLOAD_MISPLACED', false],
      ['NEWEST_DANGLING', true],
    ]);
  });

  test('NEWEST_MISMATCH (left) and NEWEST_DANGLING (repaired): a group mark pointing away from what waits', async () => {
    const { queues, k } = await lastState();
    await redis.hset(k.groupNewest(1, 'a'), 'k3', 'other');
    expect(codes(await checkDeployment(queues))).toEqual(['NEWEST_DANGLING', 'NEWEST_MISMATCH']);
    const report = await checkDeployment(queues, { repair: true });
    expect({ repaired: report.repaired.map((p) => p.code), left: codes(report) }).toEqual({ repaired: ['NEWEST_DANGLING'], left: ['NEWEST_MISMATCH'] });
    expect(await redis.hexists(k.groupNewest(1, 'a'), 'k3')).toBe(0);
  });

  test('NEWEST_DANGLING: a mark pointing nowhere; a mark in a group with nothing else (found by SCAN); a mark pointing to the same key of another group', async () => {
    const { queues, k, ids } = await lastState();
    await redis.hset(k.groupNewest(1, 'a'), 'gone', 'ghost');
    // Group d has no queue and is in no ring: only this key.
    await redis.hset(k.groupNewest(1, 'd'), 'k1', ids.cK1);
    // The delayed message is a's k4: it is no message of b's k4, nor of the level's own k4.
    await redis.hset(k.groupNewest(1, 'b'), 'k4', ids.aK4Delayed);
    await redis.hset(k.newest(1), 'k4', ids.aK4Delayed);
    const found = await expectFound(queues, ['NEWEST_DANGLING', 'NEWEST_DANGLING', 'NEWEST_DANGLING', 'NEWEST_DANGLING'], true);
    expect(found.problems.map((p) => p.ids![0]).sort()).toEqual([ids.aK4Delayed, ids.aK4Delayed, ids.cK1, 'ghost'].sort());
    // The marks still alive stay.
    expect(await redis.hget(k.groupNewest(1, 'a'), 'k4')).toBe(ids.aK4Delayed);
    expect(await redis.hget(k.groupNewest(1, 'c'), 'k1')).toBe(ids.cK1);
  });

  test('JOB_IN_TWO_PLACES: a running job also in its group queue; a waiting job in two groups', async () => {
    const first = await lastState();
    let { queues, k } = first;
    const run = first.runs.find((j) => j.url === '/a-x')!;
    await redis.rpush(k.groupQueue(1, 'a', 'execute'), run.payload);
    await redis.hincrby(k.stats, 'L1:grouped', 1);
    let found = await expectFound(queues, ['JOB_IN_TWO_PLACES'], false);
    expect(found.problems[0].message).toContain(`and in ${k.groupQueue(1, 'a', 'execute')}`);

    ({ queues, k } = await lastState());
    // c's waiting `last` message also in a's line under the same key (a's k1 is parked: its field taken, so k5).
    const payloadC = (await redis.hget(k.groupQueue(1, 'c', 'last'), 'k1'))!;
    const intoA = payloadC.replace('"key":"k1"', '"key":"k5"').replace('"group":"c"', '"group":"a"');
    await redis.hset(k.groupQueue(1, 'a', 'last'), 'k5', intoA);
    await redis.lpush(k.groupOrder(1, 'a'), 'k5');
    await redis.hincrby(k.stats, 'L1:grouped', 1);
    found = await checkDeployment(queues);
    // Its one entry points to the copy in c's hash (no INDEX_WRONG: it points to a copy); the copy in a's is nobody's newest.
    expect(codes(found)).toEqual(['JOB_IN_TWO_PLACES', 'NEWEST_MISMATCH']);
    const twice = found.problems.find((p) => p.code === 'JOB_IN_TWO_PLACES')!.message;
    expect([twice.includes(`${k.groupQueue(1, 'c', 'last')} field "k1"`), twice.includes(`${k.groupQueue(1, 'a', 'last')} field "k5"`)]).toEqual([true, true]);
  });

  test("INDEX_MISSING: a group's waiting `last` message without its entry; the repair writes the grouped form", async () => {
    const { queues, k, ids } = await lastState();
    await redis.hdel(k.jobs, ids.aK3, ids.bK1Parked);
    await expectFound(queues, ['INDEX_MISSING', 'INDEX_MISSING'], true);
    expect(await redis.hmget(k.jobs, ids.aK3, ids.bK1Parked)).toEqual(['wL1:last@a\nk3', 'wL2:last@b\nk1']);
  });

  test("INDEX_WRONG: a group's job whose entry says the level's own hash, another group, or the dead list; the repair rewrites it", async () => {
    const { queues, k, ids } = await lastState();
    await redis.hset(k.jobs, ids.aK3, 'wL1:last\nk3', ids.cK1, 'wL1:last@a\nk1', ids.aK1Parked, 'x');
    const found = await expectFound(queues, ['INDEX_WRONG', 'INDEX_WRONG', 'INDEX_WRONG'], true);
    expect(found.problems.map((p) => p.ids![0]).sort()).toEqual([ids.aK3, ids.cK1, ids.aK1Parked].sort());
    expect(await redis.hmget(k.jobs, ids.aK3, ids.cK1, ids.aK1Parked)).toEqual(['wL1:last@a\nk3', 'wL1:last@c\nk1', 'wL1:last@a\nk1']);
  });

  test("INDEX_DANGLING: grouped `last` entries pointing to a key with nothing, or to another job's; a running job's entry left", async () => {
    const { queues, k, ids } = await lastState();
    await redis.hset(k.jobs, 'ghost1', 'wL1:last@a\nnokey', 'ghost2', 'wL1:last@c\nk1', 'ghost3', 'wL2:discard@b');
    const found = await expectFound(queues, ['INDEX_DANGLING', 'INDEX_DANGLING', 'INDEX_DANGLING'], true);
    expect(found.problems.map((p) => p.ids![0]).sort()).toEqual(['ghost1', 'ghost2', 'ghost3']);
    expect(await redis.hget(k.jobs, ids.cK1)).toBe('wL1:last@c\nk1');
  });
});
