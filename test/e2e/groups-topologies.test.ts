// Tenant groups (docs/design.md, "Tenants") beyond one Redis, on deployments started here:
// a Redis Cluster (3 masters with a replica each) with --partitions 3, and a Sentinel set
// (1 master, 1 replica, 3 sentinels) failing over in the middle of a grouped drain.
//
// The scripts build a group's key names inside Lua from the partition's tag (groupKey.lua):
// they are not in a script's KEYS, but share its hash tag, so on a Cluster they are in the
// slot of the keys the script is sent. A group lives in one partition (a hash of its name),
// which keeps its cap exact.
//
// The groups app records a 'start' and an 'end' entry per run in one list of a plain Redis of
// this test's own: one order for all worker processes, whatever happens to the deployment.
// Every process a test starts is killed when it ends; every wait has a bound.
import path from 'node:path';
import Redis from 'ioredis';
import { closeClients, rawCall } from '../../client';
import type { CallRequest } from '../../shared/call/params';
import { keysFor } from '../../shared/store/keys';
import { Queues } from '../../shared/store/queues';
import { createRedis, type RedisClient } from '../../shared/store/redis';
import { scanKeys } from '../../shared/store/check/read';
import { expectCleanState } from '../helpers/check-state';
import { inProcessGateway, killAll, sleep, startSwitchyard, waitFor, type SwitchyardProcess } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';
import { killAllTopologies, startCluster, startSentinelSet, topologiesAvailable, type LocalCluster, type SentinelSet } from '../helpers/redis-topologies';

const APP = path.join(__dirname, '..', 'fixtures', 'groups-app.js');
const describeIf = topologiesAvailable() ? describe : describe.skip;

interface Entry {
  phase: 'start' | 'end';
  id: string;
  group: string | null;
  key: string | null;
  seq: number | null;
  fence: number;
  attempt: number;
  pid: number;
  at: number;
}

let recordRedis: TestRedis;
let records: Redis;
let prefix: string;
let recordKey: string;
let workers: SwitchyardProcess[] = [];
const gateways: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  recordRedis = await startRedis();
  records = new Redis(recordRedis.url);
});
afterAll(async () => {
  closeClients();
  await killAll();
  records?.disconnect();
  await recordRedis?.close();
  await killAllTopologies();
}, 30_000);
beforeEach(() => {
  prefix = uniquePrefix('gtopo');
  recordKey = `${prefix}:runs`;
  workers = [];
});

/** Stops what a test started: workers as an operator does (SIGTERM hands their runs back), killed if they do not exit in 10 s; gateways likewise bounded. */
async function stopAll(): Promise<void> {
  for (const w of workers) w.kill('SIGTERM');
  await Promise.race([Promise.all(workers.map((w) => w.exited)), sleep(10_000)]);
  await killAll();
  workers = [];
  const all = gateways.splice(0);
  await Promise.all(all.map((g) => Promise.race([g.stop().catch(() => undefined), sleep(10_000)])));
}

const report = (line: string): void => void process.stderr.write(`[groups topologies] ${line}\n`);

async function startWorkers(url: string, count: number, flags: string[]): Promise<SwitchyardProcess[]> {
  const started = await Promise.all(
    Array.from({ length: count }, () =>
      startSwitchyard('worker', ['--app', APP, '--redis', url, '--prefix', prefix, ...flags], { RECORD_URL: recordRedis.url, RECORD_KEY: recordKey }),
    ),
  );
  workers.push(...started);
  return started;
}

async function gatewayOn(url: string, flags: string[] = []): Promise<{ address: string }> {
  const gateway = await inProcessGateway(APP, url, prefix, flags);
  gateways.push(gateway);
  return gateway;
}

interface Grouped {
  group: string;
  policy: 'execute' | 'last';
  key?: string;
  /** Version of a `last` key's message (the newest wins), or the execute message's number. */
  seq: number;
  sleep: number;
}

/** Sends a grouped async call through the gateway (the client has no group option: queue_detail.group, raw). */
async function sendGrouped(address: string, m: Grouped): Promise<{ status: number; id?: string; state?: string }> {
  const queueDetail: Record<string, unknown> = { level: 1, limit_policy: m.policy, group: m.group };
  if (m.key !== undefined) queueDetail.key = m.key;
  const params = { url: '/run', method: 'POST', reply: false, queue_detail: queueDetail, content: { group: m.group, seq: m.seq, sleep: m.sleep } };
  const answer = await rawCall(JSON.stringify(params), { address, deadlineSeconds: 10 });
  const data = (typeof answer.data === 'object' && answer.data !== null ? answer.data : {}) as { id?: string; state?: string };
  return { status: answer.status, id: data.id, state: data.state };
}

async function entries(): Promise<Entry[]> {
  return (await records.lrange(recordKey, 0, -1)).map((e) => JSON.parse(e) as Entry);
}

/** The most runs open at once per name (`nameOf` a start entry; null: not counted), walking the list in order. */
function maxOpen(record: Entry[], nameOf: (e: Entry) => string | null): Map<string, number> {
  const open = new Map<string, Set<number>>();
  const most = new Map<string, number>();
  for (const e of record) {
    const name = nameOf(e);
    if (name === null) continue;
    const runs = open.get(name) ?? new Set<number>();
    open.set(name, runs);
    if (e.phase === 'start') runs.add(e.fence);
    else runs.delete(e.fence);
    most.set(name, Math.max(most.get(name) ?? 0, runs.size));
  }
  return most;
}

/**
 * What a drained deployment still holds of its groups, per partition tag: a count of runs, a
 * count of grouped messages waiting, a group queue key (all must be gone). A ring member whose
 * group has nothing left is not one: it stays until a claim next reaches it (design, Tenants).
 */
async function groupLeftovers(redis: RedisClient, tags: string[]): Promise<Record<string, unknown>> {
  const left: Record<string, unknown> = {};
  for (const [p, tag] of tags.entries()) {
    const k = keysFor(prefix, p, tag);
    const running = await redis.hgetall(k.groupsRunning);
    if (Object.keys(running).length > 0) left[`${tag} groups:running`] = running;
    for (const level of [1, 2] as const) {
      const grouped = Number((await redis.hget(k.stats, `L${level}:grouped`)) ?? 0);
      if (grouped !== 0) left[`${tag} L${level}:grouped`] = grouped;
    }
  }
  // Any `{…}:L<n>:g:*` key of this deployment, on every master (a tag is {prefix}, {prefix:N} or {prefix:N.M}).
  const groupKeys: string[] = [];
  for await (const key of scanKeys(redis, `{${prefix}*}:L[12]:g:*`)) groupKeys.push(key);
  if (groupKeys.length > 0) left['group keys'] = groupKeys.sort();
  return left;
}

describeIf('tenant groups on a Redis Cluster (3 masters, 3 replicas) with --partitions 3', () => {
  let cluster: LocalCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(() => cluster?.close());

  test('gateway + 2 workers with --group-concurrency 2: each group lives in the one partition its name hashes to, all messages (execute and last) run, never more than 2 runs of a group at once; nothing of the groups is left', async () => {
    const reader = createRedis(cluster.url, 'cli');
    try {
      await reader.connect();
      const gateway = await gatewayOn(cluster.url, ['--partitions', '3']);
      const stored = await Queues.open(reader, prefix);
      const tags = stored.tags;
      expect(tags).toHaveLength(3);
      const masters = await Promise.all(tags.map((tag) => cluster.masterFor(tag)));
      expect(new Set(masters).size).toBe(3);

      // Two groups per partition (names picked by the deployment's own hash), so every master holds groups.
      const placement = new Queues(reader, prefix, 3);
      const partitionOf = (group: string): number => placement.partitionFor({ queue: { level: 1, policy: 'execute', group } } as CallRequest);
      const groups: string[] = [];
      const perPartition = [0, 0, 0];
      for (let i = 0; groups.length < 6; i++) {
        const p = partitionOf(`tenant-${i}`);
        if (perPartition[p] < 2) {
          perPartition[p]++;
          groups.push(`tenant-${i}`);
        }
      }
      report(`groups ${groups.map((g) => `${g}→${partitionOf(g)}`).join(' ')}; partitions ${tags.join(' ')} on masters ${masters.join(', ')}`);

      // First wave, no worker yet: 10 execute messages per group, and 2 `last` keys × 3 versions.
      const executeIds = new Set<string>();
      const lastStates: string[] = [];
      for (const group of groups) {
        for (let seq = 0; seq < 10; seq++) {
          const a = await sendGrouped(gateway.address, { group, policy: 'execute', seq, sleep: 150 });
          expect(a).toMatchObject({ status: 201, id: expect.any(String) });
          executeIds.add(a.id!);
        }
        for (let v = 1; v <= 3; v++)
          for (const key of ['k0', 'k1']) {
            const a = await sendGrouped(gateway.address, { group, policy: 'last', key, seq: v, sleep: 150 });
            expect(a.status).toBe(201);
            lastStates.push(a.state!);
          }
      }
      // Newest wins per key inside a group: one message waits per (group, key).
      expect(lastStates.filter((s) => s === 'queued')).toHaveLength(groups.length * 2);

      // Each group's queues, its ring entry and its waiting count are in its own partition, and only there.
      for (const group of groups) {
        const where = await Promise.all(
          tags.map(async (tag, p) => {
            const k = keysFor(prefix, p, tag);
            const queues = await reader.exists(k.groupQueue(1, group, 'execute'), k.groupQueue(1, group, 'last'));
            return queues + ((await reader.zscore(k.groupRing(1), group)) === null ? 0 : 1);
          }),
        );
        expect({ group, where }).toEqual({ group, where: [0, 1, 2].map((p) => (p === partitionOf(group) ? 3 : 0)) });
      }
      for (const [p, tag] of tags.entries()) {
        expect(Number(await reader.hget(keysFor(prefix, p, tag).stats, 'L1:grouped'))).toBe(2 * (10 + 2));
      }
      // The scan the end relies on finds them (every group's execute, last, last:order and last:newest).
      const before = (await groupLeftovers(reader, tags))['group keys'] as string[];
      expect(before).toHaveLength(groups.length * 4);

      // Redis's own count of each group's runs, sampled on every partition while the workers drain.
      let mostCounted = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const [p, tag] of tags.entries())
            for (const v of Object.values(await reader.hgetall(keysFor(prefix, p, tag).groupsRunning))) mostCounted = Math.max(mostCounted, Number(v));
          await sleep(20);
        }
      })();
      try {
        // 2 × 8 slots: more than the 6 groups × 2 the cap allows, so the cap is what holds them.
        await startWorkers(cluster.url, 2, ['--partitions', '3', '--concurrency', '8', '--group-concurrency', '2']);
        // Second wave while they drain: newer versions of the same keys.
        await sleep(300);
        for (const group of groups)
          for (let v = 4; v <= 6; v++)
            for (const key of ['k0', 'k1']) expect((await sendGrouped(gateway.address, { group, policy: 'last', key, seq: v, sleep: 150 })).status).toBe(201);

        // Done: every execute message ended, and every key's newest version (6) ended.
        const done = async (): Promise<boolean> => {
          const ends = (await entries()).filter((e) => e.phase === 'end');
          const ended = new Set(ends.map((e) => e.id));
          const newest = new Set(ends.filter((e) => e.key !== null && e.seq === 6).map((e) => `${e.group}/${e.key}`));
          return [...executeIds].every((id) => ended.has(id)) && newest.size === groups.length * 2;
        };
        expect(await waitFor(done, 20_000, 100)).toBe(true);
      } finally {
        sampling = false;
        await sampler;
      }
      const record = await entries();
      const starts = record.filter((e) => e.phase === 'start');
      const perGroup = maxOpen(record, (e) => e.group);
      const perKey = maxOpen(record, (e) => (e.key === null ? null : `${e.group}/${e.key}`));
      const lastRuns = starts.filter((e) => e.key !== null);
      report(
        `${starts.length} runs (${executeIds.size} execute, ${lastRuns.length} of last keys: versions ${[...new Set(lastRuns.map((e) => e.seq))].sort().join(',')}); ` +
          `most runs at once per group ${groups.map((g) => perGroup.get(g) ?? 0).join(', ')}; most counted in groups:running ${mostCounted}; ` +
          `runs by worker ${[...new Set(starts.map((e) => e.pid))].map((pid) => starts.filter((e) => e.pid === pid).length).join(' / ')}`,
      );
      // Each execute message ran once (no failure, no worker lost).
      expect(starts.filter((e) => e.key === null).length).toBe(executeIds.size);
      // The cap: reached (the slots allow more), never passed, as the list shows and as Redis counted.
      expect(Math.max(...groups.map((g) => perGroup.get(g) ?? 0))).toBe(2);
      expect(mostCounted).toBeLessThanOrEqual(2);
      // One run of a `last` key at a time, inside its group; the first wave coalesced to its newest (3), the last run of each key is its version 6.
      expect(Math.max(...perKey.values())).toBe(1);
      // (Version 3 runs, or is replaced by 4 if the second wave came before its turn.)
      expect(lastRuns.some((e) => e.seq === 1 || e.seq === 2)).toBe(false);
      for (const group of groups)
        for (const key of ['k0', 'k1']) expect(lastRuns.filter((e) => e.group === group && e.key === key && e.seq === 6)).toHaveLength(1);
      // Both workers took grouped runs.
      expect(new Set(starts.map((e) => e.pid)).size).toBe(2);

      await stopAll();
      expect(await groupLeftovers(reader, tags)).toEqual({});
      await expectCleanState(cluster.url, prefix);
    } finally {
      await stopAll();
      reader.disconnect();
    }
  }, 60_000);
});

describeIf('tenant groups on Redis Sentinel (1 master, 1 replica, 3 sentinels)', () => {
  let sentinel: SentinelSet;
  beforeAll(async () => {
    sentinel = await startSentinelSet();
  }, 60_000);
  afterAll(() => sentinel?.close());

  test('the master is SIGKILLed in the middle of a grouped drain: every message runs at least once, and the group counts end at 0', async () => {
    // Opened after the failover: a reader that does not reconnect, on the new master.
    const reader = createRedis(sentinel.url, 'cli');
    try {
      const gateway = await gatewayOn(sentinel.url);
      const groups = Array.from({ length: 4 }, (_, g) => `tenant-${g}`);
      const ids = new Set<string>();
      for (const group of groups)
        for (let seq = 0; seq < 25; seq++) {
          const a = await sendGrouped(gateway.address, { group, policy: 'execute', seq, sleep: 100 });
          expect(a).toMatchObject({ status: 201, id: expect.any(String) });
          ids.add(a.id!);
        }
      // Every message is on the replica before the drain starts: what the failover may lose is
      // the drain's own steps (claims, finishes), not a message.
      const masterPort = await sentinel.masterPort();
      const direct = new Redis({ port: masterPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      try {
        expect(Number(await direct.call('WAIT', '1', '5000'))).toBe(1);
        // (WAIT counts this connection's writes: the gateway's are older; the offsets say they are there.)
        const replicated = async (): Promise<boolean> => {
          const info = await direct.info('replication');
          const own = Number(/master_repl_offset:(\d+)/.exec(info)![1]);
          const replica = Number(/slave0:.*offset=(\d+)/.exec(info)?.[1] ?? -1);
          return replica >= own;
        };
        expect(await waitFor(replicated, 5000, 50)).toBe(true);
      } finally {
        direct.disconnect();
      }

      const k = keysFor(prefix);
      // 4 groups × cap 2 = 8 runs at a time of 100 ms: about 1.3 s for the 100.
      await startWorkers(sentinel.url, 2, ['--concurrency', '8', '--group-concurrency', '2', '--lease', '2s']);
      expect(await waitFor(async () => (await records.llen(recordKey)) >= 60, 10_000, 20)).toBe(true);
      const startedBefore = new Set((await entries()).filter((e) => e.phase === 'start').map((e) => e.id)).size;
      const failover = await sentinel.killMaster();
      await reader.connect();
      expect(startedBefore).toBeLessThan(ids.size);

      const ended = async (): Promise<boolean> => {
        const endedIds = new Set((await entries()).filter((e) => e.phase === 'end').map((e) => e.id));
        return [...ids].every((id) => endedIds.has(id));
      };
      const allEnded = await waitFor(ended, 30_000, 200);
      const record = await entries();
      const starts = record.filter((e) => e.phase === 'start');
      const startedIds = new Set(starts.map((e) => e.id));
      const missing = [...ids].filter((id) => !startedIds.has(id));
      // The counts once the drain is over (a run finished on the old master, lost with it, is handed back and runs again first).
      const countsZero = async (): Promise<boolean> =>
        (await reader.hlen(k.groupsRunning)) === 0 && Number((await reader.hget(k.stats, 'L1:grouped')) ?? 0) === 0;
      const settled = await waitFor(countsZero, 10_000, 200);
      report(
        `sentinel failover ${failover.oldPort} -> ${failover.newPort} in ${failover.failoverMs} ms after ${startedBefore} of ${ids.size} grouped messages started; ` +
          `${startedIds.size} ran, ${missing.length} never, ${starts.length - startedIds.size} ran again; most runs of a group at once ${Math.max(...maxOpen(record, (e) => e.group).values())}; ` +
          `groups:running ${JSON.stringify(await reader.hgetall(k.groupsRunning))}, L1:grouped ${await reader.hget(k.stats, 'L1:grouped')}`,
      );
      expect(missing).toEqual([]);
      expect(allEnded).toBe(true);
      expect(settled).toBe(true);

      await stopAll();
      expect(await groupLeftovers(reader, [k.tag])).toEqual({});
      await expectCleanState(sentinel.url, prefix);
    } finally {
      await stopAll();
      reader.disconnect();
    }
  }, 60_000);
});
