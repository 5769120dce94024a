// The operator's side of tenant groups against a real Redis: the group structures are written
// with plain commands, as docs/design.md ("Tenants") lays them out, and what `stats`, `queue`,
// `group`, the dashboard and /metrics read from them is compared with what was written.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { encodeLimits } from '../../shared/groups';
import { dashboardRoute } from '../../server/dashboard/route';
import { createAdminServer } from '../../shared/ops/admin';
import { readDeploymentGroups, readGroup, readPartitionGroups, setGroupLimits, summarizeGroups } from '../../shared/ops/groups';
import { Metrics, OTHER_GROUPS_LABEL, registerGroupGauges } from '../../shared/ops/metrics';
import type { Level } from '../../shared/levels';
import { Queues } from '../../shared/store/queues';
import type { Keys } from '../../shared/store/keys';
import { uniquePrefix } from '../helpers/redis';
import { suiteRedis } from '../helpers/store-calls';

const BIN = path.join(__dirname, '..', '..', 'bin', 'switchyard.js');
const suite = suiteRedis();
let redis: Redis;
beforeAll(() => ({ redis } = suite));

/** A grouped payload as enqueue writes it: `"group"` after `"key"`, before `"ttl"`. */
function payload(id: string, level: Level, group: string, policy: 'execute' | 'discard' | 'last' = 'execute', key?: string): string {
  const route = `${policy === 'execute' ? '' : `,"policy":"${policy}"`}${key !== undefined ? `,"key":${JSON.stringify(key)}` : ''}`;
  return `{"id":"${id}","at":1000,"level":${level}${route},"group":"${group}","method":"POST","url":"/g"}`;
}

let seq = 0;
/** Puts `n` messages of a group in line in a level (lists, and `last` keys in the hash and the order list), in the ring, counted. */
async function fill(keys: Keys, level: Level, group: string, n: { execute?: number; discard?: number; last?: number }): Promise<void> {
  const p = redis.multi();
  for (let i = 0; i < (n.execute ?? 0); i++) p.lpush(keys.groupQueue(level, group, 'execute'), payload(`e${seq++}`, level, group));
  for (let i = 0; i < (n.discard ?? 0); i++) p.lpush(keys.groupQueue(level, group, 'discard'), payload(`d${seq++}`, level, group, 'discard'));
  for (let i = 0; i < (n.last ?? 0); i++) {
    const key = `k${seq++}`;
    p.hset(keys.groupQueue(level, group, 'last'), key, payload(`l${seq++}`, level, group, 'last', key));
    p.lpush(keys.groupOrder(level, group), key);
  }
  p.zadd(keys.groupRing(level), 'NX', Date.now() * 1000 + seq++, group);
  p.hincrby(keys.stats, `L${level}:grouped`, (n.execute ?? 0) + (n.discard ?? 0) + (n.last ?? 0));
  await p.exec();
}

async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 20_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('reading the groups', () => {
  test('backlog per level, running, limits, and held back by rate or by cap', async () => {
    const queues = new Queues(redis, uniquePrefix('grp'));
    const k = queues.keysOf(0);
    await fill(k, 1, 'acme', { execute: 3, discard: 1, last: 2 });
    await fill(k, 2, 'acme', { execute: 1 });
    await fill(k, 1, 'capped', { execute: 2 });
    await fill(k, 1, 'slow', { execute: 1 });
    await redis.hset(k.groupsRunning, 'acme', '2', 'capped', '3', 'busy-only', '1');
    await redis.hset(k.groupsLimits, 'capped', encodeLimits({ concurrency: 3 }), 'acme', encodeLimits({ concurrency: 5, rate: 2 }));
    const [sec] = await redis.time();
    await redis.hset(k.groupsTat, 'slow', String(Number(sec) * 1000 + 60_000), 'acme', '1');

    const read = await readPartitionGroups(redis, k);
    const by = Object.fromEntries(read.groups.map((g) => [g.name, g]));
    expect(read.active).toBe(4);
    expect(read.unread).toBe(0);
    expect(by.acme).toMatchObject({ backlog: { 1: 6, 2: 1 }, running: 2, limits: { concurrency: 5, rate: 2 }, limited: false, dueInMs: 0 });
    expect(by.capped).toMatchObject({ backlog: { 1: 2, 2: 0 }, running: 3, limited: 'concurrency' });
    expect(by.slow.limited).toBe('rate');
    expect(by.slow.dueInMs).toBeGreaterThan(50_000);
    // Running with nothing in line is active too.
    expect(by['busy-only']).toMatchObject({ backlog: { 1: 0, 2: 0 }, running: 1, limited: false });

    // One group, as `switchyard group <name>` shows it.
    expect(await readGroup(queues, 'acme')).toMatchObject({ backlog: { 1: 6, 2: 1 }, running: 2, inRing: { 1: true, 2: true } });
    expect(await readGroup(queues, 'nobody')).toMatchObject({ backlog: { 1: 0, 2: 0 }, running: 0, limits: {}, limited: false });
    await expect(readGroup(queues, 'bad name')).rejects.toThrow(/a group name is 1–64 characters/);

    // The stats' backlog adds the grouped messages ({p}:stats L<n>:grouped).
    const { total } = await queues.stats();
    expect(total.grouped).toEqual({ L1: 9, L2: 1 });
    expect(total.backlog).toEqual({ L1: 9, L2: 1 });
  });

  test('top N by backlog, the rest summed; a level alone; the read is bounded and says so', async () => {
    const queues = new Queues(redis, uniquePrefix('grp'));
    const k = queues.keysOf(0);
    for (let i = 0; i < 25; i++) await fill(k, 1, `t${String(i).padStart(2, '0')}`, { execute: i + 1 });
    await fill(k, 2, 'l2only', { execute: 100 });
    await redis.hset(k.groupsTat, 't00', String(Date.now() + 60_000));

    const summary = summarizeGroups(await readDeploymentGroups(queues), 5);
    expect(summary.active).toBe(26);
    expect(summary.top.map((g) => g.name)).toEqual(['l2only', 't24', 't23', 't22', 't21']);
    // The 21 others: 1 + 2 + … + 21 waiting, one of them (t00) limited by its rate.
    expect(summary.other).toEqual({ groups: 21, backlog: { 1: 231, 2: 0 }, running: 0, limited: 1 });

    const level2 = summarizeGroups(await readDeploymentGroups(queues), 5, 2);
    expect(level2.top.map((g) => g.name)).toEqual(['l2only']);
    expect(level2.other).toBeNull();
    expect(level2.active).toBe(1);

    // At most 10 read: the others are counted, not read, and the answer says so.
    const bounded = await readPartitionGroups(redis, k, 10);
    expect(bounded.groups).toHaveLength(10);
    expect(bounded.unread).toBe(16);
    expect(bounded.active).toBe(26);
  });

  test('several partitions: each read, summed', async () => {
    const queues = new Queues(redis, uniquePrefix('grp'), 3);
    await fill(queues.keysOf(0), 1, 'a', { execute: 2 });
    await fill(queues.keysOf(2), 1, 'b', { execute: 5 });
    const summary = summarizeGroups(await readDeploymentGroups(queues));
    expect(summary.active).toBe(2);
    expect(summary.top.map((g) => [g.name, g.backlog[1]])).toEqual([
      ['b', 5],
      ['a', 2],
    ]);
  });
});

describe('setting limits', () => {
  test('each part set, kept, cleared; the field goes with both parts; every partition; a group in line wakes a worker', async () => {
    const queues = new Queues(redis, uniquePrefix('grp'));
    const k = queues.keysOf(0);
    expect(await setGroupLimits(queues, 'acme', { concurrency: 2 })).toEqual({ concurrency: 2 });
    expect(await redis.hget(k.groupsLimits, 'acme')).toBe('2:');
    expect(await setGroupLimits(queues, 'acme', { rate: 0.5 })).toEqual({ concurrency: 2, rate: 0.5 });
    expect(await redis.hget(k.groupsLimits, 'acme')).toBe('2:0.5');
    expect(await setGroupLimits(queues, 'acme', { concurrency: 0 })).toEqual({ concurrency: 0, rate: 0.5 });
    expect(await setGroupLimits(queues, 'acme', { concurrency: null })).toEqual({ rate: 0.5 });
    expect(await redis.hget(k.groupsLimits, 'acme')).toBe(':0.5');
    expect(await setGroupLimits(queues, 'acme', { rate: null })).toEqual({});
    expect(await redis.hexists(k.groupsLimits, 'acme')).toBe(0);
    // Nothing in line: no wake marker; in line in level 2: its marker.
    expect(await redis.llen(k.wake(1))).toBe(0);
    await fill(k, 2, 'acme', { execute: 1 });
    await setGroupLimits(queues, 'acme', { concurrency: 4 });
    expect([await redis.llen(k.wake(1)), await redis.llen(k.wake(2))]).toEqual([0, 1]);

    await expect(setGroupLimits(queues, 'a b', { concurrency: 1 })).rejects.toThrow(/a group name is/);
    await expect(setGroupLimits(queues, 'acme', { concurrency: 1.5 })).rejects.toThrow(/whole number/);

    const several = new Queues(redis, uniquePrefix('grp'), 3);
    await setGroupLimits(several, 'x', { rate: 20 });
    for (let p = 0; p < 3; p++) expect(await redis.hget(several.keysOf(p).groupsLimits, 'x')).toBe(':20');
  });
});

describe('/metrics', () => {
  test('top N groups by backlog with a label each, the rest under one label, and the counts', async () => {
    const queues = new Queues(redis, uniquePrefix('grp'));
    const k = queues.keysOf(0);
    for (let i = 0; i < 4; i++) await fill(k, 1, `m${i}`, { execute: i + 1 });
    await redis.hset(k.groupsRunning, 'm3', '2', 'm0', '1');
    await redis.hset(k.groupsLimits, 'm3', '2:');
    const metrics = new Metrics();
    registerGroupGauges(metrics, () => readDeploymentGroups(queues), 2);
    const text = await metrics.registry.metrics();
    expect(text).toContain('switchyard_group_backlog{group="m3",level="1"} 4');
    expect(text).toContain('switchyard_group_backlog{group="m2",level="1"} 3');
    expect(text).toContain(`switchyard_group_backlog{group="${OTHER_GROUPS_LABEL}",level="1"} 3`);
    expect(text).not.toContain('group="m1"');
    expect(text).toContain('switchyard_group_running{group="m3"} 2');
    expect(text).toContain(`switchyard_group_running{group="${OTHER_GROUPS_LABEL}"} 1`);
    expect(text).toContain('switchyard_group_limited{group="m3"} 1');
    expect(text).toContain('switchyard_group_limited{group="m2"} 0');
    expect(text).toContain('switchyard_groups_active 4');
    expect(text).toContain('switchyard_groups_unread 0');
  });
});

describe('the dashboard', () => {
  test('the overview lists the groups (names only with full details); the admin sets limits with the token', async () => {
    const queues = new Queues(redis, uniquePrefix('grp'));
    const k = queues.keysOf(0);
    await fill(k, 1, 'tenant@example.com', { execute: 2 });
    await fill(k, 2, 'b', { execute: 1 });
    const server = createAdminServer(0, '127.0.0.1');
    server.addRoute(dashboardRoute({ queues, capacity: 1000, adminToken: 'tok' }));
    const port = await server.start();
    try {
      const get = async (headers: Record<string, string> = {}): Promise<Record<string, unknown>> =>
        (await fetch(`http://127.0.0.1:${port}/api/overview`, { headers })).json() as Promise<Record<string, unknown>>;
      expect((await get()).groups).toEqual({
        top: [
          { name: 'tenant@example.com', backlog: { 1: 2, 2: 0 }, running: 0, limits: {}, limited: false },
          { name: 'b', backlog: { 1: 0, 2: 1 }, running: 0, limits: {}, limited: false },
        ],
        other: null,
        active: 2,
        unread: 0,
      });
      // Through a proxy (not a loopback caller), without the token: the tenants' names are not shown.
      const redacted = (await get({ 'x-forwarded-for': '203.0.113.9' })).groups as { top: Array<{ name: string }> };
      expect(redacted.top.map((g) => g.name)).toEqual(['#1', '#2']);

      const post = (path: string, token?: string): Promise<Response> =>
        fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect((await post('/api/groups/b/limits?concurrency=3')).status).toBe(401);
      const set = await post('/api/groups/b/limits?concurrency=3&rate=10/s', 'tok');
      expect([set.status, await set.json()]).toEqual([200, { group: 'b', limits: { concurrency: 3, rate: 10 } }]);
      expect(await redis.hget(k.groupsLimits, 'b')).toBe('3:10');
      for (const [path, reason] of [
        ['/api/groups/b/limits', /nothing to change/],
        ['/api/groups/b/limits?rate=fast', /a rate is N\/s/],
        ['/api/groups/b/limits?concurrency=-2', /a concurrency is a whole number/],
        ['/api/groups/a%20b/limits?concurrency=1', /a group name is/],
        ['/api/groups/b/limits?concurrency=1&concurrency=2', /more than once/],
        ['/api/groups/b/limits?concurrency=1&x=1', /unknown parameter x/],
      ] as Array<[string, RegExp]>) {
        const r = await post(path, 'tok');
        expect([path, r.status]).toEqual([path, 400]);
        expect(((await r.json()) as { error: string }).error).toMatch(reason);
      }
    } finally {
      await server.stop();
    }
  });
});

describe('the CLI (built dist/)', () => {
  test('group: set, show, list, groups, stats; bad input answered with the reason and exit 2', async () => {
    const prefix = uniquePrefix('grpcli');
    const queues = new Queues(redis, prefix);
    const k = queues.keysOf(0);
    await fill(k, 1, 'acme', { execute: 3 });
    await fill(k, 1, 'beta', { execute: 1, last: 1 });
    const common = ['--redis', suite.server.url, '--prefix', prefix];

    const set = await cli(['group', 'acme', '--concurrency', '2', '--rate', '30/m', ...common]);
    expect(set).toMatchObject({ code: 0, stdout: 'group acme: concurrency 2, rate 30/m\n' });
    expect(await redis.hget(k.groupsLimits, 'acme')).toBe('2:0.5');
    expect((await cli(['group', 'acme', '--rate', 'off', ...common])).stdout).toBe('group acme: concurrency 2, rate no limit\n');

    const shown = await cli(['group', 'acme', ...common]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/limits +concurrency 2, rate no limit/);
    expect(shown.stdout).toMatch(/waiting +L1 3 {2}L2 0/);
    expect(JSON.parse((await cli(['group', 'acme', '--json', ...common])).stdout)).toMatchObject({ name: 'acme', backlog: { 1: 3, 2: 0 }, running: 0 });

    const list = await cli(['groups', '--top', '1', ...common]);
    expect(list.stdout).toMatch(/groups: 2 active/);
    expect(list.stdout).toMatch(/acme +3 +0 +0 +-/);
    expect(list.stdout).toMatch(/\(1 other groups\) +2 +0 +0/);
    expect((await cli(['group', '--list', '--json', ...common])).stdout).toContain('"active":2');

    const stats = await cli(['stats', ...common]);
    expect(stats.stdout).toMatch(/backlog +L1 5 +L2 0 +\(in named groups: L1 5 +L2 0\)/);
    expect(stats.stdout).toMatch(/groups: 2 active/);
    expect(JSON.parse((await cli(['stats', '--json', ...common])).stdout).groups.top).toHaveLength(2);
    expect((await cli(['queue', '1', ...common])).stdout).toMatch(/level 1 groups: 2 active[\s\S]*acme/);

    for (const [args, reason] of [
      [['group', ...common], /needs a group name \(or --list\)/],
      [['group', 'a b', ...common], /a group name is 1–64 characters/],
      [['group', 'x', '--rate', 'fast', ...common], /--rate: a rate is N\/s, N\/m or N\/h/],
      [['group', 'x', '--concurrency', '-1', ...common], /--concurrency: a concurrency is a whole number from 1/],
      [['group', 'x', '--concurrency', '1.5', ...common], /--concurrency: a concurrency is a whole number/],
      [['group', '--list', 'x', ...common], /--list takes no group name/],
      [['group', 'x', 'y', ...common], /one group at a time/],
      [['group', 'x', '--wat', ...common], /unknown flag --wat/],
    ] as Array<[string[], RegExp]>) {
      const r = await cli(args);
      expect([args, r.code]).toEqual([args, 2]);
      expect(r.stderr).toMatch(reason);
    }
  });
});
