// Tenant groups end to end (docs/design.md, "Tenants"): real worker processes, a real Redis.
// The groups app records a 'start' and an 'end' entry per run in one Redis list; the list's order
// is one order for all processes, so what it shows running at once never exceeds what Redis
// counted at once (a start is written after its claim, an end before its settle).
import path from 'node:path';
import Redis from 'ioredis';
import { closeClients, rawCall } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { Store } from '../../shared/store/store';
import { expectCleanState } from '../helpers/check-state';
import { inProcessGateway, killAll, sleep, startSwitchyard, waitFor, type SwitchyardProcess } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';
import { asyncCall } from '../helpers/store-calls';

const APP = path.join(__dirname, '..', 'fixtures', 'groups-app.js');

interface Entry {
  phase: 'start' | 'end' | 'killed' | 'mark';
  id: string;
  group: string | null;
  key: string | null;
  seq: number | null;
  fence: number;
  attempt: number;
  pid: number;
  at: number;
}

let server: TestRedis;
let redis: Redis;
let prefix: string;
let recordKey: string;
let workers: SwitchyardProcess[];

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  closeClients();
  await killAll();
  redis.disconnect();
  await server.close();
});

beforeEach(() => {
  prefix = uniquePrefix('groups');
  recordKey = `${prefix}:runs`;
  workers = [];
});
afterEach(async () => {
  // Stopped as an operator stops them (SIGTERM hands their runs back), then the checker.
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
  await killAll();
  await expectCleanState(server.url, prefix);
  // What the checker does not read yet (docs/design.md, Tenants): every test here runs all its
  // jobs, so with the workers stopped no group counts a run, none counts a message waiting, and
  // no group's queue key is left.
  const k = keysFor(prefix);
  expect(await redis.hgetall(k.groupsRunning)).toEqual({});
  expect([await redis.hget(k.stats, 'L1:grouped'), await redis.hget(k.stats, 'L2:grouped')].map((n) => Number(n ?? 0))).toEqual([0, 0]);
  const tag = k.groupRing(1).slice(0, -':L1:groups'.length);
  const [, groupKeys] = await redis.scan(0, 'MATCH', `${tag}:L[12]:g:*`, 'COUNT', 100_000);
  expect(groupKeys).toEqual([]);
});

async function startWorkers(count: number, flags: string[]): Promise<SwitchyardProcess[]> {
  const started = await Promise.all(
    Array.from({ length: count }, () =>
      startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, ...flags], { RECORD_URL: server.url, RECORD_KEY: recordKey }),
    ),
  );
  workers.push(...started);
  return started;
}

const admission = { capacity: 1_000_000, discardThreshold: 1_000_000 };

/** Enqueues through the store (as a gateway does), `group` undefined for the default group; 500 in flight at a time. */
async function enqueue(jobs: Array<{ group?: string; sleep: number; seq?: number }>): Promise<string[]> {
  const store = new Store(redis, prefix);
  const ids: string[] = [];
  for (let i = 0; i < jobs.length; i += 500) {
    const batch = jobs.slice(i, i + 500);
    const answers = await Promise.all(
      batch.map((j) =>
        store.enqueue(
          asyncCall('/run', 1, 'execute', j.group === undefined ? {} : { group: j.group }, { group: j.group ?? null, sleep: j.sleep, seq: j.seq ?? null }),
          admission,
        ),
      ),
    );
    for (const a of answers) {
      expect(a.outcome).toBe('queued');
      ids.push(a.id);
    }
  }
  return ids;
}

async function entries(): Promise<Entry[]> {
  return (await redis.lrange(recordKey, 0, -1)).map((e) => JSON.parse(e) as Entry);
}

/** Marks a point in the record (the process that wrote open runs is gone, a burst is over). */
async function mark(entry: Partial<Entry> & Pick<Entry, 'phase'>): Promise<void> {
  await redis.rpush(recordKey, JSON.stringify(entry));
}

/**
 * The most runs open at once per name (`nameOf` a start entry; null: not counted), walking the
 * list in order. A run of a killed process ends at the 'killed' mark written once it exited
 * (Redis counts it until recovery, later still: the figure is a lower bound of Redis's).
 */
function maxOpen(record: Entry[], nameOf: (e: Entry) => string | null): Map<string, number> {
  const open = new Map<string, Map<number, Entry>>();
  const most = new Map<string, number>();
  for (const e of record) {
    if (e.phase === 'killed') {
      for (const runs of open.values()) for (const [fence, run] of runs) if (run.pid === e.pid) runs.delete(fence);
      continue;
    }
    if (e.phase !== 'start' && e.phase !== 'end') continue;
    const name = nameOf(e);
    if (name === null) continue;
    const runs = open.get(name) ?? new Map<number, Entry>();
    open.set(name, runs);
    if (e.phase === 'start') runs.set(e.fence, e);
    else runs.delete(e.fence);
    most.set(name, Math.max(most.get(name) ?? 0, runs.size));
  }
  return most;
}

/** Per group, the fewest and the most runs among `order`'s windows of `size` consecutive runs. */
function windowShares(order: string[], size: number): { windows: number; min: number; max: number; perGroup: Map<string, [number, number]> } {
  const perGroup = new Map<string, [number, number]>();
  const groups = [...new Set(order)];
  const counts = new Map<string, number>(groups.map((g) => [g, 0]));
  let windows = 0;
  for (let i = 0; i < order.length; i++) {
    counts.set(order[i], counts.get(order[i])! + 1);
    if (i >= size) counts.set(order[i - size], counts.get(order[i - size])! - 1);
    if (i < size - 1) continue;
    windows++;
    for (const g of groups) {
      const [lo, hi] = perGroup.get(g) ?? [Infinity, -Infinity];
      perGroup.set(g, [Math.min(lo, counts.get(g)!), Math.max(hi, counts.get(g)!)]);
    }
  }
  const all = [...perGroup.values()];
  return { windows, min: Math.min(...all.map((p) => p[0])), max: Math.max(...all.map((p) => p[1])), perGroup };
}

/** How many of `order`'s first runs were taken while every group in it still had a run to come. */
function whileAllWait(order: string[]): number {
  const last = new Map<string, number>();
  order.forEach((g, i) => last.set(g, i));
  return Math.min(...last.values()) + 1;
}

const report = (line: string): void => void process.stderr.write(`[groups e2e] ${line}\n`);

test('one big group and nine small ones, 4 workers: the small ones are done before the big one is a fifth done; every 200 runs while all 10 wait are shared ±10 %', async () => {
  const jobs = [
    ...Array.from({ length: 5000 }, (_, seq) => ({ group: 'big', sleep: 3, seq })),
    ...Array.from({ length: 9 }, (_, s) => Array.from({ length: 50 }, (_, seq) => ({ group: `small-${s}`, sleep: 3, seq }))).flat(),
  ];
  const ids = await enqueue(jobs);
  const startedAt = Date.now();
  await startWorkers(4, []);
  expect(await waitFor(async () => (await redis.llen(recordKey)) >= 2 * ids.length, 50_000, 200)).toBe(true);
  const drainMs = Date.now() - startedAt;
  const record = await entries();
  const starts = record.filter((e) => e.phase === 'start');
  expect(new Set(starts.map((e) => e.id))).toEqual(new Set(ids));

  // The small groups' last ends come before the big group's 1000th start.
  const bigStarts = starts.filter((e) => e.group === 'big');
  const fifth = record.indexOf(bigStarts[999]);
  let lastSmallEnd = -1;
  for (let i = 0; i < record.length; i++) if (record[i].phase === 'end' && record[i].group !== 'big') lastSmallEnd = i;
  const bigBeforeSmallDone = record.slice(0, lastSmallEnd).filter((e) => e.phase === 'start' && e.group === 'big').length;
  expect(lastSmallEnd).toBeLessThan(fifth);

  // While all ten have work in line: the runs claimed before the first small group's last
  // one, in the order the claims chose them (run tokens), and in the order their handlers
  // started (the list: four processes, each starting its claim's runs as its event loop gets to them).
  const byToken = [...starts].sort((a, b) => a.fence - b.fence);
  const claimedWhileAllWait = new Set(byToken.slice(0, whileAllWait(byToken.map((e) => e.group!))));
  const inClaimOrder = windowShares(
    byToken.filter((e) => claimedWhileAllWait.has(e)).map((e) => e.group!),
    200,
  );
  const inStartOrder = windowShares(
    starts.filter((e) => claimedWhileAllWait.has(e)).map((e) => e.group!),
    200,
  );
  report(
    `test 1: ${ids.length} runs in ${drainMs} ms; the small groups were done after ${bigBeforeSmallDone} starts of the big one (a fifth: 1000); ` +
      `${inClaimOrder.windows} windows of 200 runs claimed while all 10 wait: runs per group ${inClaimOrder.min}..${inClaimOrder.max} in claim order, ` +
      `${inStartOrder.min}..${inStartOrder.max} in start order (equal: 20)`,
  );
  expect(inClaimOrder.windows).toBeGreaterThan(250);
  // The claims take the groups in turn: exactly equal. The starts: within ±10 %.
  expect([inClaimOrder.min, inClaimOrder.max]).toEqual([20, 20]);
  expect(inStartOrder.min).toBeGreaterThanOrEqual(18);
  expect(inStartOrder.max).toBeLessThanOrEqual(22);
}, 60_000);

test('--group-concurrency 2 on 4 workers × 50 slots: never more than 2 runs of a group at once, across a SIGKILL of a worker mid-run and its recovery; every job runs', async () => {
  const groups = Array.from({ length: 6 }, (_, g) => `tenant-${g}`);
  const ids = await enqueue([
    ...groups.flatMap((group) => Array.from({ length: 30 }, (_, seq) => ({ group, sleep: 100, seq }))),
    // The default group is never capped: its runs overlap freely beside the capped ones.
    ...Array.from({ length: 40 }, (_, seq) => ({ sleep: 100, seq })),
  ]);
  const flags = ['--concurrency', '50', '--group-concurrency', '2', '--lease', '1s'];
  const started = await startWorkers(4, flags);
  // Redis's own count, sampled meanwhile.
  const k = keysFor(prefix);
  let mostCounted = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const v of Object.values(await redis.hgetall(k.groupsRunning))) mostCounted = Math.max(mostCounted, Number(v));
      await sleep(10);
    }
  })();
  // The victim: a worker running grouped jobs.
  const groupedRuns = async (w: SwitchyardProcess): Promise<number> =>
    (await redis.hvals(k.workerJobs(w.ready.id))).filter((p) => p.includes('"group":"')).length;
  let victim: SwitchyardProcess | undefined;
  expect(
    await waitFor(
      async () => {
        for (const w of started) if ((await groupedRuns(w)) >= 2) victim = w;
        return victim !== undefined;
      },
      10_000,
      5,
    ),
  ).toBe(true);
  const heldAtKill = await groupedRuns(victim!);
  victim!.kill('SIGKILL');
  await victim!.exited;
  await mark({ phase: 'killed', pid: victim!.child.pid! });
  workers.splice(workers.indexOf(victim!), 1);

  const ended = async (): Promise<boolean> => new Set((await entries()).filter((e) => e.phase === 'end').map((e) => e.id)).size === ids.length;
  expect(await waitFor(ended, 30_000, 100)).toBe(true);
  sampling = false;
  await sampler;
  const record = await entries();
  const perGroup = maxOpen(record, (e) => e.group);
  const recovered = record.filter((e) => e.phase === 'start' && e.group !== null && e.attempt > 1).length;
  const capped = groups.map((g) => perGroup.get(g) ?? 0);
  const defaultOpen = maxOpen(record, (e) => (e.group === null ? 'default' : null)).get('default')!;
  report(
    `test 2: the victim held ${heldAtKill} grouped runs at SIGKILL, ${recovered} grouped runs recovered; most runs at once per group (list order) ${capped.join(', ')}; ` +
      `most counted in ${k.groupsRunning} ${mostCounted}; the default group (no cap) ${defaultOpen}`,
  );
  expect(Math.max(...capped)).toBe(2);
  expect(mostCounted).toBeLessThanOrEqual(2);
  expect(recovered).toBeGreaterThan(0);
  expect(defaultOpen).toBeGreaterThan(2);
  expect(await redis.hlen(k.groupsRunning)).toBe(0);
}, 60_000);

test('--group-rate 20/s: 100 ± 2 runs of that group start in the 5 s from its first; groups with an override of no limit drain at full speed beside it', async () => {
  const k = keysFor(prefix);
  const others = Array.from({ length: 4 }, (_, g) => `free-${g}`);
  for (const g of others) await redis.hset(k.groupsLimits, g, ':0');
  const ids = await enqueue([
    ...Array.from({ length: 115 }, (_, seq) => ({ group: 'limited', sleep: 2, seq })),
    ...others.flatMap((group) => Array.from({ length: 60 }, (_, seq) => ({ group, sleep: 20, seq }))),
  ]);
  await startWorkers(4, ['--group-rate', '20/s']);
  // (Polled with LLEN: reading the whole list every time would take the CPU the workers need.)
  expect(await waitFor(async () => (await redis.llen(recordKey)) >= 2 * ids.length, 15_000, 200)).toBe(true);
  const record = await entries();
  expect(new Set(record.filter((e) => e.phase === 'end').map((e) => e.id))).toEqual(new Set(ids));
  const limited = record.filter((e) => e.phase === 'start' && e.group === 'limited').map((e) => e.at);
  const first = limited[0];
  const inFive = limited.filter((at) => at < first + 5000).length;
  const gaps = limited.slice(1).map((at, i) => at - limited[i]);
  const freeEnds = record.filter((e) => e.phase === 'end' && e.group !== 'limited').map((e) => e.at);
  const freeStarts = record.filter((e) => e.phase === 'start' && e.group !== 'limited').map((e) => e.at);
  const freeMs = Math.max(...freeEnds) - Math.min(...freeStarts);
  const limitedDuringFree = limited.filter((at) => at <= Math.max(...freeEnds)).length;
  report(
    `test 3: ${inFive} starts of the 20/s group in the 5 s from its first (gaps ${Math.min(...gaps)}..${Math.max(...gaps)} ms); ` +
      `the 4 unlimited groups' 240 runs of 20 ms took ${freeMs} ms; ${limitedDuringFree} runs of the limited group meanwhile`,
  );
  expect(inFive).toBeGreaterThanOrEqual(98);
  expect(inFive).toBeLessThanOrEqual(102);
  // Full speed: the other groups' 240 runs take far less than the limited group's 5.7 s (at
  // 20/s they would take 12 s; all fit in the workers' 200 slots at twice).
  expect(freeMs).toBeLessThan(1500);
}, 60_000);

test('`last` inside groups, sent through a gateway: newest wins per key after a burst, never two runs of a key at once; the same key in another group is another key', async () => {
  const gateway = await inProcessGateway(APP, server.url, prefix);
  try {
    const address = `127.0.0.1:${gateway.port}`;
    const scopes: Array<string | undefined> = ['tenant-a', 'tenant-b', undefined];
    const keys = Array.from({ length: 6 }, (_, i) => `k${i}`);
    const scopeOf = (group: string | null | undefined, key: string | null): string => `${group ?? '(default)'}/${key}`;
    const sendVersions = async (group: string | undefined, key: string, from: number, to: number, sleepMs: number): Promise<string[]> => {
      const states: string[] = [];
      for (let seq = from; seq <= to; seq++) {
        const queueDetail = { level: 1, limit_policy: 'last', key, ...(group !== undefined && { group }) };
        const params = { url: '/run', method: 'POST', reply: false, content: { group: group ?? null, sleep: sleepMs, seq }, queue_detail: queueDetail };
        const answer = await rawCall(JSON.stringify(params), { address });
        expect(answer.status).toBe(201);
        states.push((answer.data as { state: string }).state);
      }
      return states;
    };
    const all = scopes.flatMap((group) => keys.map((key) => ({ group, key })));
    const runsOf = (record: Entry[], phase: 'start' | 'end') => record.filter((e) => e.phase === phase);

    // No worker yet: 20 versions of each key wait as one message, the newest.
    const states = await Promise.all(all.map(({ group, key }) => sendVersions(group, key, 1, 20, 0)));
    for (const s of states) expect(s).toEqual(['queued', ...Array<string>(19).fill('replaced')]);
    await startWorkers(2, ['--concurrency', '20', '--group-concurrency', '3']);
    expect(await waitFor(async () => runsOf(await entries(), 'end').length >= all.length, 10_000)).toBe(true);
    await sleep(300);
    const quiet = await entries();
    expect(
      runsOf(quiet, 'start')
        .map((e) => [scopeOf(e.group, e.key), e.seq])
        .sort(),
    ).toEqual(all.map(({ group, key }) => [scopeOf(group, key), 20]).sort());

    // A burst while the workers run (each run 40 ms): versions 21..60 of every key, one after another per key.
    await Promise.all(all.map(({ group, key }) => sendVersions(group, key, 21, 60, 40)));
    await mark({ phase: 'mark' });
    const newestRan = async (): Promise<boolean> => runsOf(await entries(), 'end').filter((e) => e.seq === 60).length === all.length;
    expect(await waitFor(newestRan, 15_000, 100)).toBe(true);
    await sleep(300);
    const record = await entries();
    const burst = record.slice(quiet.length);
    const afterMark = record.slice(record.findIndex((e) => e.phase === 'mark'));
    const runsPerScope = new Map<string, number[]>();
    for (const e of runsOf(burst, 'start')) runsPerScope.set(scopeOf(e.group, e.key), [...(runsPerScope.get(scopeOf(e.group, e.key)) ?? []), e.seq!]);
    const open = maxOpen(record, (e) => scopeOf(e.group, e.key));
    const startsAfterMark = runsOf(afterMark, 'start');
    report(
      `test 4: burst of 40 versions × ${all.length} keys: ${runsOf(burst, 'start').length} runs (per key: ${scopes.map((g) => `${g ?? '(default)'} ${keys.map((key) => runsPerScope.get(scopeOf(g, key))?.length ?? 0).join('/')}`).join(', ')}); ` +
        `${startsAfterMark.length} runs started after the burst, all of the newest; most runs of one key at once ${Math.max(...open.values())}`,
    );
    expect(Math.max(...open.values())).toBe(1);
    for (const { group, key } of all) {
      const seqs = runsPerScope.get(scopeOf(group, key))!;
      // Newer messages only, in order, ending with the newest.
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(seqs.at(-1)).toBe(60);
      // After the burst, at most its newest message runs.
      const late = startsAfterMark.filter((e) => scopeOf(e.group, e.key) === scopeOf(group, key)).map((e) => e.seq);
      expect(late.length <= 1 && late.every((s) => s === 60)).toBe(true);
    }
    expect(runsOf(burst, 'start').length).toBeLessThan(all.length * 40);
  } finally {
    await gateway.stop();
  }
}, 60_000);
