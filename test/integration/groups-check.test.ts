// The checker over tenant groups' structures (docs/design.md, "Tenants"; invariant 9): a state
// written with plain commands as the scripts would leave it checks clean; then each problem is
// made by hand, the checker finds it (and only it), --repair repairs what it may and a second
// check is clean.
import Redis from 'ioredis';
import { checkDeployment, type CheckReport, type ProblemCode } from '../../shared/store/check';
import { groupOfKey, groupOfPayload } from '../../shared/store/check/groups';
import type { Keys } from '../../shared/store/keys';
import type { Level } from '../../shared/levels';
import { Queues } from '../../shared/store/queues';
import { uniquePrefix } from '../helpers/redis';
import { suiteRedis } from '../helpers/store-calls';

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
 * holding it), b (level 2, discard; one run), c (running only), a waiting grouped job with the
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

test('a clean state with groups gives no problem, and counts the grouped jobs', async () => {
  const queues = new Queues(redis, uniquePrefix('gchk'));
  await cleanState(queues);
  const report = await checkDeployment(queues);
  expect(lines(report)).toBe('');
  expect(report.ok).toBe(true);
  expect(report.counts).toMatchObject({ waiting: 6, running: 3 });
});

const CASES: Array<{ name: string; code: ProblemCode; repairable: boolean; corrupt(k: Keys): Promise<unknown> }> = [
  { name: 'a ring member with nothing waiting', code: 'GROUP_RING_STALE', repairable: true, corrupt: (k) => redis.zadd(k.groupRing(2), 5, 'a') },
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
    name: "a payload of level 2 in a group's level-1 queue",
    code: 'GROUP_PAYLOAD_MISPLACED',
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
    name: 'a grouped index entry naming the wrong group',
    code: 'INDEX_WRONG',
    repairable: false,
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
  await checkDeployment(queues, { repair: true });
  expect(Number(await redis.zscore(k.groupRing(1), 'a'))).toBeGreaterThan(Date.now() * 1000 - 60_000_000);
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
