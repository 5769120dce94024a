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
