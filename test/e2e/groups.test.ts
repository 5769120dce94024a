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
      batch.map((j) => store.enqueue(asyncCall('/run', 1, 'execute', j.group === undefined ? {} : { group: j.group }, { group: j.group ?? null, sleep: j.sleep, seq: j.seq ?? null }), admission)),
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

  // While all ten have work in line: up to the start of the first small group's last job; in
  // the order the handlers started (the list) and in the order the claims chose (run tokens).
  const startOrder = starts.map((e) => e.group!);
  const claimOrder = [...starts].sort((a, b) => a.fence - b.fence).map((e) => e.group!);
  const byStart = windowShares(startOrder.slice(0, whileAllWait(startOrder)), 200);
  const byToken = windowShares(claimOrder.slice(0, whileAllWait(claimOrder)), 200);
  report(
    `test 1: ${ids.length} runs in ${drainMs} ms; the small groups were done after ${bigBeforeSmallDone} starts of the big one (a fifth: 1000); ` +
      `windows of 200 while all 10 wait: start order ${byStart.windows} windows, runs per group ${byStart.min}..${byStart.max}; ` +
      `claim order (tokens) ${byToken.windows} windows, ${byToken.min}..${byToken.max} (equal: 20)`,
  );
  expect(byStart.windows).toBeGreaterThan(100);
  expect(byStart.min).toBeGreaterThanOrEqual(18);
  expect(byStart.max).toBeLessThanOrEqual(22);
  expect([byToken.min, byToken.max]).toEqual([20, 20]);
}, 60_000);
