// Beyond one Redis, on real deployments started here: a Sentinel set (1 master, 1 replica, 3
// sentinels) and a Cluster (3 masters with a replica each). The async semantics on the Cluster
// with queues partitioned over its masters; a master SIGKILLed under load on both, with sync
// calls, async calls, workers and the jobs counted; durable enqueue; partition counts that
// disagree; and on a Cluster without replicas, one partition's master lost for longer than the
// lease while the other partitions go on.
//
// Nothing here waits without a bound: every command run has a timeout, and whatever a test
// started (worker processes, in-process gateways) is killed when it ends, passes, fails or
// times out — also what a timed-out test body starts after its teardown ran.
import { execFile, execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import path from 'node:path';
import Redis from 'ioredis';
import { call, closeClients, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { createRedis } from '../../shared/store/redis';
import { BIN, inProcessGateway, killAll, logLines, sleep, startSwitchyard, type SwitchyardProcess, waitFor } from '../helpers/processes';
import { expectCleanState } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';
import { killAllTopologies, startCluster, startSentinelSet, topologiesAvailable, type LocalCluster, type SentinelSet } from '../helpers/redis-topologies';
import { Queues } from '../../shared/store/queues';
import calculateSlot from 'cluster-key-slot';
import { chooseTags, mastersBySlot, type SlotRanges } from '../../shared/store/placement';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
const available = topologiesAvailable();
const describeIf = available ? describe : describe.skip;

interface Run {
  id: string;
  key: string | null;
  level: number;
  attempt: number;
  body: Record<string, unknown>;
  pid: number;
  start: number;
  end?: number;
}

let recordRedis: TestRedis;
let records: Redis;
let prefix: string;
let recordKey: string;

beforeAll(async () => {
  recordRedis = await startRedis();
  records = new Redis(recordRedis.url);
});
afterAll(async () => {
  testEnded++;
  await stopGateways();
  closeClients();
  await killAll();
  records?.disconnect();
  await recordRedis?.close();
  await killAllTopologies();
}, 60_000);
beforeEach(() => {
  prefix = uniquePrefix('topo');
  recordKey = `${prefix}:runs`;
});
/** The Redis (Sentinel or Cluster URL) whose state the teardown checks; set by each describe block's own teardown. */
let checkOn: string | undefined;
afterEach(async () => {
  testEnded++;
  await stopGateways();
  await killAll();
  // The state the test left, once its processes are stopped: on the Redis its describe block set up.
  const url = checkOn;
  checkOn = undefined;
  if (url) await expectCleanState(url, prefix);
}, 30_000);

/** Counts the ends of tests: a process started by a test that has ended (it timed out) is killed at once. */
let testEnded = 0;
const gateways = new Set<{ stop(): Promise<void> }>();

/** Stops the in-process gateways a test left running; one that does not stop within 10 s is left to the process exit. */
async function stopGateways(): Promise<void> {
  const all = [...gateways];
  gateways.clear();
  await Promise.all(all.map((g) => Promise.race([g.stop().catch(() => undefined), sleep(10_000)])));
}

/** A switchyard command, bounded: it is SIGKILLed after 30 s (a process that does not exit must fail the test, not hang it). */
function cli(args: string[], options: ExecFileSyncOptions = {}): string {
  return execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL', ...options }) as string;
}

function report(line: string): void {
  process.stdout.write(`[topologies] ${line}\n`);
}

async function runs(): Promise<Run[]> {
  return (await records.lrange(recordKey, 0, -1)).map((r) => JSON.parse(r) as Run);
}

async function gatewayOn(url: string, flags: string[] = []): ReturnType<typeof inProcessGateway> {
  const startedIn = testEnded;
  const gateway = await inProcessGateway(APP, url, prefix, flags);
  const stop = gateway.stop.bind(gateway);
  let stopped: Promise<void> | undefined;
  const tracked = Object.assign(gateway, { stop: () => (stopped ??= stop().finally(() => gateways.delete(tracked))) });
  gateways.add(tracked);
  if (testEnded !== startedIn) await stopGateways();
  return tracked;
}

async function workerOn(url: string, flags: string[] = []): Promise<SwitchyardProcess> {
  const startedIn = testEnded;
  const worker = await startSwitchyard('worker', ['--app', APP, '--redis', url, '--prefix', prefix, ...flags], {
    RECORD_URL: recordRedis.url,
    RECORD_KEY: recordKey,
  });
  if (testEnded !== startedIn) worker.kill('SIGKILL');
  return worker;
}

/** The partitions' tags stored for the deployment under test (the first process chose them). */
async function storedTags(url: string): Promise<string[]> {
  const r = createRedis(url, 'cli');
  try {
    await r.connect();
    return (await Queues.open(r, prefix)).tags;
  } finally {
    r.disconnect();
  }
}

/** The tags a new deployment of `candidate` with 3 partitions would choose on this Cluster now. */
async function tagsChosenFor(url: string, candidate: string): Promise<string[]> {
  const r = createRedis(url, 'cli');
  try {
    await r.connect();
    return chooseTags(candidate, 3, mastersBySlot((await r.cluster('SLOTS')) as unknown as SlotRanges));
  } finally {
    r.disconnect();
  }
}

/**
 * A few hundred async calls per second and a stream of sync calls while `fault` runs, then a
 * while more; every answer counted.
 */
async function underLoad(
  address: string,
  fault: () => Promise<unknown>,
  after = 3000,
): Promise<{ accepted: string[]; statuses: Record<string, number>; syncCalls: number; syncFailures: string[] }> {
  const accepted: string[] = [];
  const statuses: Record<string, number> = {};
  const syncFailures: string[] = [];
  let syncCalls = 0;
  let stop = false;
  const asyncLoop = async (lane: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      try {
        const a = await send('/record', { address, level: 1, content: { lane, i }, deadline: 5 });
        statuses[a.status] = (statuses[a.status] ?? 0) + 1;
        if (a.status === 201) accepted.push((a.data as { id: string }).id);
      } catch (err) {
        statuses[(err as Error).message] = (statuses[(err as Error).message] ?? 0) + 1;
      }
      await sleep(4);
    }
  };
  const syncLoop = async (): Promise<void> => {
    while (!stop) {
      syncCalls++;
      try {
        const a = await call('/ping', { address, timeout: 2 });
        if (a.status !== 200) syncFailures.push(`status ${a.status}`);
      } catch (err) {
        syncFailures.push((err as Error).message);
      }
      await sleep(5);
    }
  };
  const loops = [asyncLoop(0), asyncLoop(1), asyncLoop(2), syncLoop()];
  await sleep(1500);
  await fault();
  await sleep(after);
  stop = true;
  await Promise.all(loops);
  return { accepted, statuses, syncCalls, syncFailures };
}

async function allRun(ids: string[], ms: number): Promise<{ missing: string[]; duplicates: number }> {
  await waitFor(async () => {
    const seen = new Set((await runs()).map((r) => r.id));
    return ids.every((id) => seen.has(id));
  }, ms);
  const all = await runs();
  const seen = new Set(all.map((r) => r.id));
  return { missing: ids.filter((id) => !seen.has(id)), duplicates: all.length - seen.size };
}

describe('agreeing on the partition count', () => {
  test('a worker that met Redis only after its start checks the count until the check is made, and stops on a mismatch', async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    try {
      await admin.set(`{${prefix}}:partitions`, '3');
      // The worker's user may not read yet: its first check will fail (NOPERM), which is no answer.
      await admin.call('ACL', 'SETUSER', 'agree', 'on', '>secret', '~*', '&*', '+@all', '-get');
      // Redis holds every client for a while: the worker starts without an answer, and checks on its first `ready`.
      await admin.call('CLIENT', 'PAUSE', '6000', 'ALL');
      const worker = await workerOn(`redis://agree:secret@127.0.0.1:${redis.port}`, ['--partitions', '2']);
      expect(logLines(worker.output()).some((l) => l.event === 'redis_unavailable')).toBe(true);
      // Its first check was refused (Redis logs the denied GET).
      const refused = async (): Promise<boolean> => JSON.stringify(await admin.call('ACL', 'LOG')).includes('"agree"');
      expect(await waitFor(refused, 10_000)).toBe(true);
      await admin.call('ACL', 'SETUSER', 'agree', '+get');
      const exit = await Promise.race([worker.exited, sleep(10_000).then(() => 'still running')]);
      const fatal = logLines(worker.output()).find((l) => l.event === 'start_failed');
      report(`partition count checked again after a failed first check: worker exit ${exit}, ${JSON.stringify(fatal?.error)}`);
      expect(exit).toBe(2);
      expect(fatal?.error).toContain('--partitions 2 does not match the 3 partition(s) this deployment uses');
    } finally {
      admin.disconnect();
      await redis.close();
    }
  }, 60_000);

  test('a worker starts while Redis is full (maxmemory, noeviction): the count is read, not written again', async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    try {
      await admin.set(`{${prefix}}:partitions`, '1');
      for (let i = 0; i < 100; i++) await admin.set(`${prefix}:ballast:${i}`, 'x'.repeat(10_000));
      // The limit under what is stored: full for good, whatever passing buffers come and go.
      const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', String(used - 200_000));
      await expect(admin.set(`${prefix}:probe`, '1', 'NX')).rejects.toThrow(/OOM/);
      const worker = await workerOn(redis.url);
      expect(worker.ready.id).toBeTruthy();
      expect(logLines(worker.output()).filter((l) => l.event === 'start_failed')).toEqual([]);
    } finally {
      admin.disconnect();
      await redis.close();
    }
  }, 60_000);
});

describeIf('Redis Sentinel (1 master, 1 replica, 3 sentinels)', () => {
  let sentinel: SentinelSet;
  beforeAll(async () => {
    sentinel = await startSentinelSet();
  }, 60_000);
  afterAll(() => sentinel?.close());
  afterEach(() => {
    checkOn = sentinel?.url;
  });

  test('the master is SIGKILLed under load: sync calls never fail, async calls answer 201 or (only meanwhile) 503, workers resume; what the failover lost is counted', async () => {
    const gateway = await gatewayOn(sentinel.url);
    try {
      const worker = await workerOn(sentinel.url, ['--concurrency', '20']);
      let failover = { oldPort: 0, newPort: 0, failoverMs: 0 };
      const load = await underLoad(gateway.address, async () => (failover = await sentinel.killMaster()));
      const { missing, duplicates } = await allRun(load.accepted, 20_000);
      report(
        `sentinel failover ${failover.oldPort} -> ${failover.newPort} in ${failover.failoverMs} ms: sync ${load.syncCalls} calls, ${load.syncFailures.length} failed; ` +
          `async ${JSON.stringify(load.statuses)}; ${load.accepted.length} accepted, ${load.accepted.length - missing.length} ran, ${missing.length} lost (acknowledged by the old master, not yet replicated), ${duplicates} duplicates`,
      );
      expect(load.syncFailures).toEqual([]);
      // A call that meets the failover waits for the new master within its deadline, or answers 503 (nothing else).
      expect(Object.keys(load.statuses).every((s) => s === '201' || s === '503')).toBe(true);
      expect(load.statuses['201']).toBeGreaterThan(50);
      // Asynchronous replication: the last writes before the kill can be lost; a handful at most.
      expect(missing.length).toBeLessThanOrEqual(20);
      // The worker resumed by itself, on the new master.
      expect(logLines(worker.output()).some((l) => l.event === 'worker_resumed' || l.event === 'redis_back')).toBe(true);
      const after = await send('/record', { address: gateway.address, level: 1, content: { after: true } });
      expect(after.status).toBe(201);
      expect((await allRun([(after.data as { id: string }).id], 10_000)).missing).toEqual([]);
    } finally {
      await gateway.stop();
    }
  }, 90_000);

  test('with --replicas-ack 1 a failover loses no job answered 201; without a replica to confirm, calls answer 503 saying so', async () => {
    const gateway = await gatewayOn(sentinel.url, ['--replicas-ack', '1', '--replicas-timeout', '100ms']);
    try {
      await workerOn(sentinel.url, ['--concurrency', '20']);
      // The set has one replica: the first failover (previous test) left the new master without one,
      // so this test first needs a master with a replica again.
      const noReplica = await send('/record', { address: gateway.address, level: 1, content: { probe: true } });
      report(`replicas-ack 1 with the set as the previous failover left it: ${noReplica.status} ${JSON.stringify(noReplica.data)}`);
      if (noReplica.status === 503) {
        expect(noReplica.data).toMatch(/^queue unavailable: only 0 of 1 replica\(s\) confirmed the job within 100 ms; it may or may not have been queued/);
        await sentinel.restartFormerMaster();
      }
      let failover = { oldPort: 0, newPort: 0, failoverMs: 0 };
      const load = await underLoad(gateway.address, async () => (failover = await sentinel.killMaster()));
      const { missing, duplicates } = await allRun(load.accepted, 20_000);
      report(
        `sentinel failover with --replicas-ack 1 (${failover.oldPort} -> ${failover.newPort}, ${failover.failoverMs} ms): async ${JSON.stringify(load.statuses)}; ` +
          `${load.accepted.length} answered 201, ${missing.length} lost, ${duplicates} duplicates`,
      );
      expect(load.accepted.length).toBeGreaterThan(50);
      expect(missing).toEqual([]);
    } finally {
      await gateway.stop();
    }
  }, 90_000);

  test('a bad Sentinel or Cluster URL stops the process with one line naming --redis', () => {
    let stderr = '';
    try {
      cli(['stats', '--redis', 'redis+sentinel://127.0.0.1:1'], { stdio: 'pipe' });
    } catch (err) {
      stderr = (err as { stderr: string }).stderr;
    }
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^switchyard stats: --redis must be a Sentinel URL ending in \/<master-name>/)]);
  });
});

describeIf('Redis Cluster (3 masters, 3 replicas) with --partitions 3', () => {
  let cluster: LocalCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 90_000);
  afterAll(() => cluster?.close());
  afterEach(() => {
    checkOn = cluster?.url;
  });

  test('a fresh Cluster, the default prefix, --partitions 3: the first process stores tags that put each partition on its own master; the worker and stats use them; async calls round-trip', async () => {
    // With the default prefix, {sy:0} and {sy:1} hash to slots 829 and 4892: the same master.
    prefix = 'sy';
    recordKey = `${prefix}:runs`;
    const defaults = await Promise.all([0, 1, 2].map((p) => cluster.masterFor(`{sy:${p}}`)));
    report(`default tags {sy:0..2} would sit on masters ${defaults.join(', ')}`);
    const reader = createRedis(cluster.url, 'cli');
    try {
      await reader.connect();
      expect(await reader.get('{sy}:partitions')).toBeNull();
      const gateway = await gatewayOn(cluster.url, ['--partitions', '3']);
      const stored = JSON.parse((await reader.get('{sy}:partitions'))!) as { partitions: number; tags: string[] };
      expect(stored.partitions).toBe(3);
      const masters = await Promise.all(stored.tags.map((tag) => cluster.masterFor(tag)));
      report(`stored tags ${stored.tags.join(' ')} on masters ${masters.join(', ')}`);
      expect(new Set(masters).size).toBe(3);
      expect(stored.tags.every((tag, p) => tag === `{sy:${p}}` || tag.startsWith(`{sy:${p}.`))).toBe(true);

      // A short lease: the renewal thread (which reads the tags on its own) must renew under the stored tags.
      const worker = await workerOn(cluster.url, ['--partitions', '3', '--lease', '1s']);
      const ids: string[] = [];
      for (let i = 0; i < 9; i++) ids.push(((await send('/record', { address: gateway.address, level: 1, content: { i } })).data as { id: string }).id);
      const { missing } = await allRun(ids, 20_000);
      expect(missing).toEqual([]);
      // Every partition was used, under its stored tag: the worker's lease and the runs done are there.
      for (const tag of stored.tags) {
        expect(await reader.zcard(`${tag}:workers`)).toBeGreaterThan(0);
        expect(Number(await reader.hget(`${tag}:stats`, 'L1:done'))).toBeGreaterThan(0);
      }
      // Some leases later, every partition's lease is still the worker's, renewed under its tag.
      await sleep(3000);
      for (const tag of stored.tags) {
        const [seconds] = await reader.time();
        const [, expiry] = await reader.zrange(`${tag}:workers`, 0, 0, 'WITHSCORES');
        expect(Number(expiry)).toBeGreaterThan(Number(seconds) * 1000);
      }
      expect(logLines(worker.output()).filter((l) => l.event === 'lease_lost' || l.event === 'lease_thread_failed')).toEqual([]);
      // Nothing under the default tags the deployment does not use.
      for (const p of [0, 1, 2]) if (stored.tags[p] !== `{sy:${p}}`) expect(await reader.exists(`{sy:${p}}:stats`, `{sy:${p}}:workers`)).toBe(0);
      // The worker's own report of where its partitions are, and `switchyard stats` (no --prefix, no --partitions: the defaults and Redis).
      const placed = logLines(worker.output()).find((l) => l.event === 'partitions') as { placement: Array<{ master: string }> } | undefined;
      expect(placed?.placement.map((p) => p.master)).toEqual(masters.map((port) => `127.0.0.1:${port}`));
      expect(logLines(worker.output()).some((l) => l.event === 'partitions_unbalanced')).toBe(false);
      const stats = JSON.parse(cli(['stats', '--json', '--redis', cluster.url])) as { partitions: Array<{ tag: string; master: string }> };
      expect(stats.partitions.map((p) => p.tag)).toEqual(stored.tags);
      expect(stats.partitions.map((p) => p.master)).toEqual(masters.map((port) => `127.0.0.1:${port}`));
      const text = cli(['stats', '--redis', cluster.url]);
      for (const tag of stored.tags) expect(text).toContain(`  ${tag} `);
      expect(text).toContain(`127.0.0.1:${masters[2]}`);
    } finally {
      reader.disconnect();
    }
  }, 60_000);

  test('two processes creating a deployment at the same moment agree: the first to store wins, the other adopts its tags', async () => {
    const clients = [0, 1, 2, 3].map(() => createRedis(cluster.url, 'cli'));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      const all = clients.map((c) => new Queues(c, prefix, 3));
      await Promise.all(all.map((q) => q.agreeOnPartitions()));
      const stored = JSON.parse((await clients[0].get(`{${prefix}}:partitions`))!) as { tags: string[] };
      for (const q of all) expect(q.tags).toEqual(stored.tags);
      expect(new Set(await Promise.all(stored.tags.map((tag) => cluster.masterFor(tag)))).size).toBe(3);
      // A process that only reads (stats, the checker) and one that first uses a partition without agreeing adopt them too.
      expect((await Queues.open(clients[0], prefix)).tags).toEqual(stored.tags);
      const late = new Queues(clients[1], prefix, 3);
      await late.stats();
      expect(late.tags).toEqual(stored.tags);
    } finally {
      for (const c of clients) c.disconnect();
    }
  }, 30_000);

  test('a deployment stored by an earlier version (the count alone) keeps {prefix:0} … {prefix:2}; crowded, the start says which one slot to move where', async () => {
    // A prefix whose {p:0} … {p:2} crowd a master, as an earlier version left it.
    for (let i = 0; ; i++) {
      const masters = await Promise.all([0, 1, 2].map((p) => cluster.masterFor(`{${prefix}-${i}:${p}}`)));
      if (new Set(masters).size < 3) {
        prefix = `${prefix}-${i}`;
        recordKey = `${prefix}:runs`;
        break;
      }
    }
    const reader = createRedis(cluster.url, 'cli');
    try {
      await reader.connect();
      await reader.set(`{${prefix}}:partitions`, '3');
      const gateway = await gatewayOn(cluster.url, ['--partitions', '3']);
      const worker = await workerOn(cluster.url, ['--partitions', '3']);
      const warning = logLines(worker.output()).find((l) => l.event === 'partitions_unbalanced') as
        { msg: string; move: { slot: number; from: string; to: string }; idleMasters: string[] } | undefined;
      report(`crowded legacy deployment: ${warning?.msg}`);
      expect(warning).toBeDefined();
      const crowdedSlots = [0, 1, 2].map((p) => calculateSlot(`{${prefix}:${p}}`));
      expect(crowdedSlots).toContain(warning!.move.slot);
      expect(warning!.idleMasters).toContain(warning!.move.to);
      expect(warning!.msg.split('\n')).toHaveLength(1);
      const command = `switchyard move-slot ${warning!.move.slot} --to ${warning!.move.to} --redis ${cluster.url}`;
      expect(warning!.msg).toContain(command);
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(((await send('/record', { address: gateway.address, level: 1, content: { i } })).data as { id: string }).id);
      expect((await allRun(ids, 20_000)).missing).toEqual([]);
      expect(await reader.get(`{${prefix}}:partitions`)).toBe('3');
      for (const p of [0, 1, 2]) expect(Number(await reader.hget(`{${prefix}:${p}}:stats`, 'L1:done'))).toBeGreaterThan(0);
      const stats = JSON.parse(cli(['stats', '--json', '--redis', cluster.url, '--prefix', prefix])) as { partitions: Array<{ tag: string }> };
      expect(stats.partitions.map((p) => p.tag)).toEqual([0, 1, 2].map((p) => `{${prefix}:${p}}`));

      // What the warning says to run, run as it says, with the gateway and the worker running and calls coming in.
      const moved = crowdedSlots.indexOf(warning!.move.slot);
      const doneBefore = Number(await reader.hget(`{${prefix}:${moved}}:stats`, 'L1:done'));
      let sending = true;
      const during: string[] = [];
      const traffic = (async () => {
        for (let i = 0; sending; i++) {
          const r = await send('/record', { address: gateway.address, level: 1, content: { during: i }, deadline: 5 });
          if (r.status === 201) during.push((r.data as { id: string }).id);
        }
      })();
      // Not cli(): a synchronous run would hold this process's event loop, and with it the in-process gateway.
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [BIN, ...command.replace('switchyard ', '').split(' ')], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
        ),
      );
      sending = false;
      await traffic;
      report(`${command}: ${out.trim()} (${during.length} async calls accepted meanwhile)`);
      expect(out).toMatch(new RegExp(`^slot ${warning!.move.slot} moved from ${warning!.move.from} to ${warning!.move.to}: \\d+ key\\(s\\)\\n$`));
      expect(`127.0.0.1:${await cluster.masterFor(`{${prefix}:${moved}}`)}`).toBe(warning!.move.to);
      expect(new Set(await Promise.all([0, 1, 2].map((p) => cluster.masterFor(`{${prefix}:${p}}`)))).size).toBe(3);
      // The keys went with their slot: the partition's counters are there, and nothing accepted is lost.
      expect(Number(await reader.hget(`{${prefix}:${moved}}:stats`, 'L1:done'))).toBeGreaterThanOrEqual(doneBefore);
      expect((await allRun(during, 20_000)).missing).toEqual([]);
      // A process started now finds the partitions spread: no warning.
      const second = await workerOn(cluster.url, ['--partitions', '3']);
      expect(logLines(second.output()).some((l) => l.event === 'partitions')).toBe(true);
      expect(logLines(second.output()).some((l) => l.event === 'partitions_unbalanced')).toBe(false);
      expect(cli(command.replace('switchyard ', '').split(' '))).toBe(`slot ${warning!.move.slot} is on ${warning!.move.to} already\n`);
      // Wrong arguments: one line each.
      for (const [args, said] of [
        [['move-slot', '16384', '--to', warning!.move.to, '--redis', cluster.url], 'the slot must be a whole number from 0 to 16383 (got "16384")'],
        [['move-slot', '1', '--redis', cluster.url], '--to <host:port> is needed: the master to move the slot to'],
        [
          ['move-slot', '1', '--to', warning!.move.to, '--redis', 'redis://127.0.0.1:1'],
          '--redis must be a Cluster URL, redis+cluster://host:port[,…] (got "redis://127.0.0.1:1")',
        ],
      ] as Array<[string[], string]>) {
        let stderr = '';
        try {
          cli(args, { stdio: 'pipe' });
        } catch (err) {
          stderr = (err as { stderr: string }).stderr;
        }
        expect(stderr).toBe(`switchyard move-slot: ${said}\n`);
      }
    } finally {
      reader.disconnect();
    }
  }, 60_000);

  test('the partitions spread over the masters; execute runs once, last coalesces per key, the level-2 switch and discard hold in total', async () => {
    // CRC16 decides where a tag lands: pick a prefix whose three partitions land on three masters.
    for (let i = 0; ; i++) {
      const masters = new Set(await Promise.all([0, 1, 2].map((p) => cluster.masterFor(keysFor(`${prefix}-${i}`, p).stats))));
      if (masters.size === 3) {
        prefix = `${prefix}-${i}`;
        break;
      }
    }
    const masters = await Promise.all([0, 1, 2].map((p) => cluster.masterFor(keysFor(prefix, p).stats)));
    report(`partition masters: ${masters.join(', ')}`);
    const gateway = await gatewayOn(cluster.url, ['--partitions', '3', '--capacity', '30']);
    try {
      // No worker yet: what waits is what was accepted.
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) ids.push(((await send('/record', { address: gateway.address, level: 1, content: { i } })).data as { id: string }).id);
      const states: string[] = [];
      for (let v = 1; v <= 10; v++)
        for (const key of ['a', 'b', 'c'])
          states.push(
            ((await send('/record', { address: gateway.address, level: 1, policy: 'last', key, content: { key, v } })).data as { state: string }).state,
          );
      expect(states.filter((s) => s === 'queued')).toHaveLength(3);
      // Level 2: capacity 30 in total, 10 per partition; off past 8 waiting in a partition.
      const level2: number[] = [];
      for (let i = 0; i < 40; i++) level2.push((await send('/record', { address: gateway.address, level: 2, content: { l2: i } })).status);
      const accepted2 = level2.filter((s) => s === 201).length;
      report(`level 2 with capacity 30 over 3 partitions: ${accepted2} accepted, then refused (80% of 30 is 24)`);
      expect(accepted2).toBeGreaterThanOrEqual(24);
      expect(accepted2).toBeLessThanOrEqual(27);
      expect(level2.slice(accepted2).every((s) => s === 409)).toBe(true);
      const stats = JSON.parse(cli(['stats', '--json', '--redis', cluster.url, '--prefix', prefix]));
      expect(stats.partitions).toHaveLength(3);
      expect(stats.backlog).toEqual({ L1: 63, L2: accepted2 });
      expect(stats.partitions.every((p: { backlog: { L1: number } }) => p.backlog.L1 >= 18)).toBe(true);
      // The text shows where each partition lives.
      const text = cli(['stats', '--redis', cluster.url, '--prefix', prefix]);
      for (const [p, port] of masters.entries()) expect(text).toMatch(new RegExp(`\\{${prefix}:${p}\\}.*127\\.0\\.0\\.1:${port}`));

      await Promise.all([
        workerOn(cluster.url, ['--partitions', '3', '--concurrency', '10']),
        workerOn(cluster.url, ['--partitions', '3', '--concurrency', '10']),
      ]);
      expect(await waitFor(async () => (await runs()).length === 63 + accepted2, 20_000)).toBe(true);
      const all = await runs();
      expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
      expect(
        all
          .filter((r) => r.key)
          .map((r) => [r.key, r.body.v])
          .sort(),
      ).toEqual([
        ['a', 10],
        ['b', 10],
        ['c', 10],
      ]);
      expect(ids.every((id) => all.some((r) => r.id === id))).toBe(true);
    } finally {
      await gateway.stop();
    }
  }, 60_000);

  test('the 3:1 weighted share holds over the partitions, and discard sheds at its threshold in total', async () => {
    const gateway = await gatewayOn(cluster.url, ['--partitions', '3', '--capacity', '3000', '--discard-threshold', '30']);
    try {
      for (let i = 0; i < 120; i++) {
        await send('/record', { address: gateway.address, level: 1, content: { i } });
        await send('/record', { address: gateway.address, level: 2, content: { i } });
      }
      // 30 in total, 10 per partition: with 240 waiting every discard message is shed.
      const discard = await send('/record', { address: gateway.address, level: 1, policy: 'discard' });
      expect(discard).toMatchObject({ status: 409, data: { state: 'dropped' } });
      await workerOn(cluster.url, ['--partitions', '3', '--concurrency', '1', '--reserve', '0']);
      expect(await waitFor(async () => (await runs()).length >= 120, 20_000)).toBe(true);
      const first = (await runs()).slice(0, 120);
      const share = first.filter((r) => r.level === 1).length / first.length;
      report(`weighted share over 3 partitions, first 120 runs: ${(share * 100).toFixed(1)} % level 1 (3:1 is 75 %)`);
      expect(share).toBeGreaterThanOrEqual(0.69);
      expect(share).toBeLessThanOrEqual(0.81);
    } finally {
      await gateway.stop();
    }
  }, 60_000);

  test('crash recovery and retry-then-dead, per partition', async () => {
    const gateway = await gatewayOn(cluster.url, ['--partitions', '3']);
    try {
      const victim = await workerOn(cluster.url, ['--partitions', '3', '--lease', '1s', '--concurrency', '30']);
      const ids: string[] = [];
      for (let i = 0; i < 30; i++)
        ids.push(((await send('/record', { address: gateway.address, level: 1, content: { i, sleep: 2000 } })).data as { id: string }).id);
      const failing = ((await send('/fail', { address: gateway.address, level: 1, content: {} })).data as { id: string }).id;
      await sleep(500);
      victim.kill('SIGKILL');
      await victim.exited;
      await workerOn(cluster.url, ['--partitions', '3', '--lease', '1s', '--concurrency', '30', '--attempts', '2', '--backoff', '100ms']);
      const { missing } = await allRun(ids, 20_000);
      expect(missing).toEqual([]);
      const dead = (): string => cli(['dead', 'list', '--json', '--redis', cluster.url, '--prefix', prefix]);
      expect(await waitFor(() => (JSON.parse(dead()) as Array<{ job: { id: string } }>).some((e) => e.job.id === failing), 15_000)).toBe(true);
      expect(cli(['dead', 'requeue', failing, '--redis', cluster.url, '--prefix', prefix])).toContain(`job ${failing} requeued`);
    } finally {
      await gateway.stop();
    }
  }, 60_000);

  test('with --replicas-ack 1 a shard failover loses no job answered 201', async () => {
    const gateway = await gatewayOn(cluster.url, ['--partitions', '3', '--replicas-ack', '1', '--replicas-timeout', '200ms']);
    try {
      await workerOn(cluster.url, ['--partitions', '3', '--concurrency', '20']);
      let failover = { oldPort: 0, newPort: 0, failoverMs: 0 };
      const load = await underLoad(gateway.address, async () => (failover = await cluster.killMasterFor((await storedTags(cluster.url))[2])));
      const { missing, duplicates } = await allRun(load.accepted, 20_000);
      report(
        `cluster failover of partition 2 with --replicas-ack 1 (${failover.oldPort} -> ${failover.newPort}, ${failover.failoverMs} ms): ` +
          `async ${JSON.stringify(load.statuses)}; ${load.accepted.length} answered 201, ${missing.length} lost, ${duplicates} duplicates`,
      );
      expect(load.accepted.length).toBeGreaterThan(50);
      expect(missing).toEqual([]);
    } finally {
      await gateway.stop();
    }
  }, 90_000);

  test("a partition's master is SIGKILLed under load: sync never fails, async 503 only meanwhile, workers resume; losses counted", async () => {
    // An earlier failover left a promoted master without a replica: partition 1 must sit on a master that has one.
    for (let i = 0; ; i++) {
      const candidate = `${prefix}-${i}`;
      if ((await cluster.replicasOf(await cluster.masterFor((await tagsChosenFor(cluster.url, candidate))[1]))) > 0) {
        prefix = candidate;
        recordKey = `${prefix}:runs`;
        break;
      }
    }
    const gateway = await gatewayOn(cluster.url, ['--partitions', '3']);
    try {
      await workerOn(cluster.url, ['--partitions', '3', '--concurrency', '20']);
      let failover = { oldPort: 0, newPort: 0, failoverMs: 0 };
      const load = await underLoad(gateway.address, async () => (failover = await cluster.killMasterFor((await storedTags(cluster.url))[1])));
      const { missing, duplicates } = await allRun(load.accepted, 20_000);
      report(
        `cluster failover of partition 1 (${failover.oldPort} -> ${failover.newPort}) in ${failover.failoverMs} ms: sync ${load.syncCalls} calls, ${load.syncFailures.length} failed; ` +
          `async ${JSON.stringify(load.statuses)}; ${load.accepted.length} accepted, ${load.accepted.length - missing.length} ran, ${missing.length} lost, ${duplicates} duplicates`,
      );
      expect(load.syncFailures).toEqual([]);
      expect(Object.keys(load.statuses).every((s) => s === '201' || s === '503')).toBe(true);
      expect(missing.length).toBeLessThanOrEqual(20);
      const after = await send('/record', { address: gateway.address, level: 1, content: { after: true } });
      expect(after.status).toBe(201);
    } finally {
      await gateway.stop();
    }
  }, 90_000);

  test('a process whose --partitions disagrees with Redis refuses to start, naming both values', async () => {
    const gateway = await gatewayOn(cluster.url, ['--partitions', '3']);
    await gateway.stop();
    let stderr = '';
    try {
      cli(['worker', '--app', APP, '--redis', cluster.url, '--prefix', prefix, '--partitions', '2', '--admin-port', '0'], { stdio: 'pipe' });
    } catch (err) {
      stderr = (err as { stderr: string }).stderr;
    }
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringContaining(`switchyard worker: --partitions 2 does not match the 3 partition(s) this deployment uses ({${prefix}}:partitions in Redis)`),
    ]);
    const redis = createRedis(cluster.url, 'cli');
    await redis.connect();
    expect(await redis.zcard(keysFor(prefix, 0).workers)).toBe(0);
    redis.disconnect();
  }, 30_000);
});

describeIf("A partition's outage on a Cluster (3 masters, no replicas, cluster-require-full-coverage no) with --partitions 3", () => {
  let cluster: LocalCluster;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 0, fullCoverage: false });
  }, 90_000);
  afterAll(() => cluster?.close());
  afterEach(() => {
    checkOn = cluster?.url;
  });

  /** A connection to one master (no redirects): reads of a healthy partition never wait on the lost one. */
  function masterConnection(port: number): Redis {
    const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, commandTimeout: 2000 });
    r.on('error', () => undefined);
    return r;
  }

  /** What partition p's master says: done and recovered counters of level 1, live workers (on Redis's clock). */
  async function partitionState(r: Redis, p: number): Promise<{ done: number; recovered: number; liveWorkers: number }> {
    const k = keysFor(prefix, p);
    const [done, recovered] = await r.hmget(k.stats, 'L1:done', 'L1:recovered');
    const [seconds, micros] = await r.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    return { done: Number(done ?? 0), recovered: Number(recovered ?? 0), liveWorkers: await r.zcount(k.workers, now, '+inf') };
  }

  test('a resume with several partitions wakes an idle worker at once (a marker on the deployment wake key), not after its 1 s block', async () => {
    const reader = createRedis(cluster.url, 'cli');
    try {
      await reader.connect();
      const queues = new Queues(reader, prefix, 3);
      await queues.agreeOnPartitions();
      const wakeKey = queues.deployment.wake(1);
      // No worker yet: what a resume leaves on the wake key is plain to see.
      expect(await queues.setPaused(1, true)).toBe(true);
      expect(await queues.setPaused(1, false)).toBe(true);
      expect(await reader.llen(wakeKey)).toBe(1);
      await reader.del(wakeKey);

      const gateway = await gatewayOn(cluster.url, ['--partitions', '3']);
      await workerOn(cluster.url, ['--partitions', '3']);
      const latencies: number[] = [];
      for (let round = 0; round < 5; round++) {
        expect(await queues.setPaused(1, true)).toBe(true);
        const sent = await send('/record', { address: gateway.address, level: 1, content: { round } });
        expect(sent.status).toBe(201);
        const id = (sent.data as { id: string }).id;
        // The worker is idle (blocked on the wake keys) once its empty claims registered it idle in every partition.
        expect(
          await waitFor(
            async () => (await Promise.all(Array.from({ length: queues.partitions }, (_, p) => reader.zcard(queues.keysOf(p).idle(1))))).every((n) => n > 0),
            10_000,
            20,
          ),
        ).toBe(true);
        const resumedAt = Date.now();
        expect(await queues.setPaused(1, false)).toBe(true);
        expect(await waitFor(async () => (await runs()).some((r) => r.id === id), 5000, 5)).toBe(true);
        latencies.push(Date.now() - resumedAt);
      }
      report(`resume to run with 3 partitions, 5 rounds: ${latencies.join(', ')} ms (an idle worker blocks 1 s at a time)`);
      // Without the marker each would wait for the worker's block to time out: 0 to 1000 ms, at random.
      expect(Math.max(...latencies)).toBeLessThan(600);
    } finally {
      reader.disconnect();
    }
  }, 60_000);

  test("a partition's master lost for twice the lease stops that partition only: the others keep claiming, keep their leases and re-run nothing; back, its jobs run and nothing accepted is lost", async () => {
    const LEASE_MS = 2000;
    // CRC16 decides where a tag lands: three partitions on three masters, and the deployment's
    // own keys (partition count, wake markers) not on partition 1's master, the one lost here.
    for (let i = 0; ; i++) {
      const candidate = `${prefix}-${i}`;
      const masters = await Promise.all([0, 1, 2].map((p) => cluster.masterFor(keysFor(candidate, p).stats)));
      if (new Set(masters).size === 3 && (await cluster.masterFor(`{${candidate}}:partitions`)) !== masters[1]) {
        prefix = candidate;
        recordKey = `${prefix}:runs`;
        break;
      }
    }
    const masters = await Promise.all([0, 1, 2].map((p) => cluster.masterFor(keysFor(prefix, p).stats)));
    const byPartition = masters.map(masterConnection);
    const reader = createRedis(cluster.url, 'cli');
    try {
      await reader.connect();
      const gateway = await gatewayOn(cluster.url, ['--partitions', '3']);
      const workers = await Promise.all([0, 1].map(() => workerOn(cluster.url, ['--partitions', '3', '--lease', `${LEASE_MS}ms`, '--concurrency', '16'])));

      // Steady traffic, not held back by the calls that wait on the lost partition: one call
      // every 20 ms, each 200 ms of work, at most 300 answers outstanding.
      const accepted: string[] = [];
      const statuses: Record<string, number> = {};
      let outstanding = 0;
      let sending = true;
      const traffic = (async () => {
        for (let i = 0; sending; i++) {
          if (outstanding < 300) {
            outstanding++;
            void send('/record', { address: gateway.address, level: 1, content: { i, sleep: 200 }, deadline: 3 })
              .then(
                (a) => {
                  statuses[a.status] = (statuses[a.status] ?? 0) + 1;
                  if (a.status === 201) accepted.push((a.data as { id: string }).id);
                },
                (err: Error) => {
                  const kind = err.message.split(':')[0];
                  statuses[kind] = (statuses[kind] ?? 0) + 1;
                },
              )
              .finally(() => outstanding--);
          }
          await sleep(20);
        }
        expect(await waitFor(() => outstanding === 0, 10_000)).toBe(true);
      })();

      // Samples of every partition that answers, every 250 ms, from now to the end.
      const samples: Array<{ at: number; p: number; done: number; recovered: number; liveWorkers: number }> = [];
      const sampled = (p: number, from: number, to: number) => samples.filter((s) => s.p === p && s.at >= from && s.at <= to);
      const rate = (p: number, from: number, to: number): number => {
        const within = sampled(p, from, to);
        if (within.length < 2) return NaN;
        const [first, last] = [within[0], within[within.length - 1]];
        return (last.done - first.done) / ((last.at - first.at) / 1000);
      };
      let lostPartition = -1;
      let sampling = true;
      // One sampler per partition: a read of the lost one must not delay the others'.
      const sampler = Promise.all(
        byPartition.map(async (r, p) => {
          while (sampling) {
            const at = Date.now();
            if (p !== lostPartition) {
              try {
                samples.push({ at, p, ...(await partitionState(r, p)) });
              } catch {
                // the lost partition, read just as it was lost
              }
            }
            await sleep(250);
          }
        }),
      );

      try {
        // Every partition runs jobs before the fault.
        expect(await waitFor(async () => (await Promise.all(byPartition.map((r, p) => partitionState(r, p)))).every((s) => s.done >= 20), 30_000, 100)).toBe(
          true,
        );
        const beforeFrom = Date.now();
        await sleep(2000);
        const beforeTo = Date.now();

        // The shard is lost: SIGSTOP, so it neither answers nor closes its connections (no failover without a replica).
        lostPartition = 1;
        const lostAt = Date.now();
        await cluster.pauseMasterFor(keysFor(prefix, 1).stats);
        // The operator's reads report the partitions that answer and name the lost one.
        const queues = new Queues(reader, prefix, 3);
        const gauges = await queues.gauges().catch((err: Error) => err);
        const stats = await queues.stats().catch((err: Error) => err);
        const views = await queues.workers().catch((err: Error) => err);
        // Twice the lease, and the second or so it takes to notice the loss.
        await waitFor(() => Date.now() >= lostAt + 2 * LEASE_MS + 1500, 10_000, 100);
        const duringTo = Date.now();

        await cluster.resumeMaster(masters[1]);
        lostPartition = -1;
        const backAt = Date.now();
        const doneAtBack = (await partitionState(byPartition[1], 1)).done;
        expect(await waitFor(async () => (await partitionState(byPartition[1], 1)).done >= doneAtBack + 20, 20_000, 100)).toBe(true);
        const afterFrom = Date.now();
        await sleep(2000);
        const afterTo = Date.now();
        sending = false;
        await traffic;
        const { missing, duplicates } = await allRun(accepted, 30_000);
        sampling = false;
        await sampler;

        const rates = (from: number, to: number): string => [0, 1, 2].map((p) => `p${p} ${rate(p, from, to).toFixed(1)}/s`).join(', ');
        const loggedLeases = workers.flatMap((w) => logLines(w.output()).filter((l) => l.event === 'lease_lost'));
        const unavailable = workers.flatMap((w) => logLines(w.output()).filter((l) => l.event === 'partition_unavailable'));
        report(
          `partition 1's master (${masters[1]}) SIGSTOPped for ${backAt - lostAt} ms, lease ${LEASE_MS} ms; done rates before: ${rates(beforeFrom, beforeTo)}; ` +
            `during: ${rates(lostAt, duringTo)}; after: ${rates(afterFrom, afterTo)}; async ${JSON.stringify(statuses)}; ${accepted.length} accepted, ` +
            `${missing.length} lost, ${duplicates} run twice; leases lost: ${JSON.stringify(loggedLeases.map((l) => [l.partition, l.why]))}; ` +
            `gauges during: ${gauges instanceof Error ? gauges.message : `live workers ${gauges.liveWorkers}, unavailable ${JSON.stringify(gauges.unavailablePartitions)}`}`,
        );

        // During the outage, in every window of a second, the healthy partitions went on running jobs …
        for (const p of [0, 2]) {
          for (let from = lostAt; from + 1000 <= duringTo; from += 500) {
            const within = sampled(p, from, from + 1000);
            const rose = within.length >= 2 && within[within.length - 1].done > within[0].done;
            expect({ partition: p, msAfterLoss: from - lostAt, rose }).toEqual({ partition: p, msAfterLoss: from - lostAt, rose: true });
          }
          // … with both workers live there, and none of their jobs taken back by recovery.
          for (const s of sampled(p, lostAt, Infinity)) expect(s.liveWorkers).toBe(2);
          expect(sampled(p, 0, Infinity).every((s) => s.recovered === 0)).toBe(true);
        }
        // Each worker lost its lease in partition 1 only, and says why: the partition, not a stall.
        expect(loggedLeases.length).toBeGreaterThanOrEqual(2);
        for (const l of loggedLeases) {
          expect(l.partition).toBe(1);
          expect(l.why).toMatch(/^partition 1's Redis did not (renew it for longer than the lease|answer whether it still held)/);
        }
        for (const w of workers) {
          const lines = logLines(w.output()).filter((l) => l.event === 'partition_unavailable' && l.partition === 1);
          expect(lines.length).toBe(1);
        }
        expect(unavailable.every((l) => l.partition === 1)).toBe(true);
        expect(gauges).toMatchObject({ liveWorkers: 2, unavailablePartitions: [1] });
        expect(stats).toMatchObject({ total: { unavailablePartitions: [1] } });
        // One entry per worker process (each holds an id per partition), as its ready line names it.
        expect(views instanceof Error ? views.message : views.map((v) => v.id).sort()).toEqual(workers.map((w) => w.ready.id).sort());
        // Back: partition 1's jobs ran again, and nothing answered 201 was lost.
        expect(missing).toEqual([]);
      } finally {
        sending = false;
        sampling = false;
        await Promise.all([traffic.catch(() => undefined), sampler.catch(() => undefined)]);
      }
    } finally {
      reader.disconnect();
      for (const r of byPartition) r.disconnect();
    }
  }, 150_000);
});
