// A soak: SOAK_SECONDS (default 60) of mixed sync and async load on loopback, far above what
// one worker drains, from bounded request loops. Level 1 is never refused and never lost,
// level-2 refusals follow the 80%/60% switch, and the gateway's memory stays flat.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { call, closeClients, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { killAll, sleep, startSwitchyard, waitFor } from '../helpers/processes';
import { expectCleanRedis, failureOf } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CAPACITY = 1000;

let queueRedis: TestRedis;
let recordRedis: TestRedis;

beforeAll(async () => {
  [queueRedis, recordRedis] = await Promise.all([startRedis(), startRedis()]);
});
afterAll(async () => {
  closeClients();
  await killAll();
  const problems = await failureOf(expectCleanRedis(queueRedis.url));
  await Promise.all([queueRedis.close(), recordRedis.close()]);
  if (problems) throw problems;
});

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

test(
  `soak: ${SECONDS} s of mixed load`,
  async () => {
    const prefix = uniquePrefix('soak');
    const keys = keysFor(prefix);
    const recordKey = `${prefix}:runs`;
    const env = { RECORD_URL: recordRedis.url, RECORD_KEY: recordKey };
    const common = ['--app', APP, '--redis', queueRedis.url, '--prefix', prefix, '--capacity', String(CAPACITY)];
    const gateway = await startSwitchyard('gateway', [...common, '--port', '0', '--host', '127.0.0.1'], env);
    await startSwitchyard('worker', [...common, '--concurrency', '10'], env);
    const address = `127.0.0.1:${gateway.ready.port}`;
    const queue = new Redis(queueRedis.url);
    const records = new Redis(recordRedis.url);

    const accepted = { 1: [] as string[], 2: [] as string[] };
    const statuses = { 1: new Map<string, number>(), 2: new Map<string, number>() };
    let syncCalls = 0;
    const syncFailures: string[] = [];
    const samples: Array<{ active: boolean; backlog: number }> = [];
    const until = Date.now() + SECONDS * 1000;
    const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);

    const asyncLoop = async (level: 1 | 2, pauseMs: number): Promise<void> => {
      for (let i = 0; Date.now() < until && i < 200_000; i++) {
        const a = await send('/record', { address, level, content: { sleep: 15 } });
        const state = typeof a.data === 'object' && a.data ? ((a.data as { state?: string }).state ?? '') : '';
        bump(statuses[level], `${a.status} ${state}`);
        if (a.status === 201) accepted[level].push((a.data as { id: string }).id);
        if (pauseMs) await sleep(pauseMs);
      }
    };
    const syncLoop = async (): Promise<void> => {
      for (let i = 0; Date.now() < until && i < 200_000; i++) {
        syncCalls++;
        const a = await call('/ping', { address, timeout: 5 }).catch((err: Error) => ({ status: 0, raw: err.message }));
        if (a.status !== 200) syncFailures.push(a.raw);
        await sleep(5);
      }
    };
    const rssSeries: number[] = [];
    const rssSampler = async (): Promise<void> => {
      while (Date.now() < until) {
        rssSeries.push(Math.round(rssMb(gateway.child.pid!)));
        await sleep(2000);
      }
    };
    const sampler = async (): Promise<void> => {
      while (Date.now() < until) {
        const [active, e, d, l] = await Promise.all([
          queue.get(keys.l2Active),
          queue.llen(keys.queue(2, 'execute')),
          queue.llen(keys.queue(2, 'discard')),
          queue.hlen(keys.queue(2, 'last')),
        ]);
        samples.push({ active: active !== '0', backlog: e + d + l });
        await sleep(100);
      }
    };

    const loops = [
      asyncLoop(1, 8),
      asyncLoop(1, 8), // ~200 level-1 calls/s, inside the worker's share
      ...Array.from({ length: 8 }, () => asyncLoop(2, 0)), // level 2 as fast as the gateway answers
      syncLoop(),
      syncLoop(),
      sampler(),
      rssSampler(),
    ];
    await sleep(Math.min(10, SECONDS / 3) * 1000);
    const rssStart = rssMb(gateway.child.pid!);
    await Promise.all(loops);
    const rssEnd = rssMb(gateway.child.pid!);

    // Everything accepted runs: level 1 is never lost (and level 2 is not either).
    const drained = await waitFor(
      async () => {
        const seen = new Set((await records.lrange(recordKey, 0, -1)).map((r) => (JSON.parse(r) as { id: string }).id));
        return accepted[1].every((id) => seen.has(id)) && accepted[2].every((id) => seen.has(id));
      },
      120_000,
      500,
    );
    const counters = await queue.hgetall(keys.stats);
    queue.disconnect();
    records.disconnect();

    // RSS swings with each major GC, so compare the medians of the two halves after warm-up.
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const steady = rssSeries.slice(Math.ceil(Math.min(10, SECONDS / 3) / 2));
    const firstHalf = median(steady.slice(0, Math.floor(steady.length / 2)));
    const secondHalf = median(steady.slice(Math.floor(steady.length / 2)));
    const maxBacklog = Math.max(...samples.map((s) => s.backlog));
    let turnedOff = 0;
    let turnedOn = 0;
    for (let i = 1; i < samples.length; i++) {
      if (samples[i - 1].active && !samples[i].active) turnedOff++;
      if (!samples[i - 1].active && samples[i].active) turnedOn++;
    }
    process.stdout.write(
      `[soak] ${SECONDS} s: sync ${syncCalls} calls, ${syncFailures.length} failed; level 1 ${JSON.stringify(Object.fromEntries(statuses[1]))}; level 2 ${JSON.stringify(Object.fromEntries(statuses[2]))}; ` +
        `switch off ${turnedOff}× / on ${turnedOn}×, largest level-2 backlog sampled ${maxBacklog}; counters ${JSON.stringify(counters)}; gateway RSS ${rssStart.toFixed(1)} MB → ${rssEnd.toFixed(1)} MB (every 2 s: ${rssSeries.join(' ')}; medians after warm-up, first half ${firstHalf} MB, second half ${secondHalf} MB)\n`,
    );

    expect(syncFailures).toEqual([]);
    expect([...statuses[1].keys()]).toEqual(['201 queued']);
    expect([...statuses[2].keys()].sort()).toEqual(['201 queued', '409 refused']);
    expect(drained).toBe(true);
    // The switch turned off above 80% and back on under 60%, more than once.
    expect(turnedOff).toBeGreaterThanOrEqual(1);
    expect(turnedOn).toBeGreaterThanOrEqual(1);
    expect(maxBacklog).toBeLessThanOrEqual(CAPACITY * 0.8 + 1);
    for (const s of samples) if (!s.active) expect(s.backlog).toBeGreaterThanOrEqual(CAPACITY * 0.6 - 60); // off only while the backlog is high (sampling lags)
    // Flat memory: the second half of the run holds no more than the first, give or take GC swings.
    expect(secondHalf - firstHalf).toBeLessThan(24);
    expect(rssEnd - rssStart).toBeLessThan(64);
  },
  (SECONDS + 180) * 1000,
);
