// Faults for real (delivery and shutdown, docs/protocol.md section 5): retries and dead letters, workers
// killed with SIGKILL or stopped with SIGTERM in the middle of 1,000 jobs, a gateway drained
// on SIGTERM, and Redis stopped and restarted under load. Runs are recorded in a second Redis
// that no test stops, so a record is never lost with the queue's Redis.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import Redis from 'ioredis';
import type { RunningPart } from '../../cli/running-part';
import { call, closeClients, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { BIN, inProcessGateway, killAll, sleep, startSwitchyard, waitFor, type SwitchyardProcess } from '../helpers/processes';
import { expectCleanState } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');

interface Run {
  id: string;
  attempt: number;
  body: Record<string, unknown>;
  pid: number;
}

let queueRedis: TestRedis;
let recordRedis: TestRedis;
let records: Redis;
/** A client of the queue's Redis, for looking at keys. */
let queue: Redis;
let prefix: string;
let recordKey: string;

beforeAll(async () => {
  [queueRedis, recordRedis] = await Promise.all([startRedis({ appendonly: true }), startRedis()]);
  records = new Redis(recordRedis.url);
  queue = new Redis(queueRedis.url);
});
afterAll(async () => {
  closeClients();
  await killAll();
  records.disconnect();
  queue.disconnect();
  await Promise.all([queueRedis.close(), recordRedis.close()]);
});
beforeEach(() => {
  prefix = uniquePrefix('rel');
  recordKey = `${prefix}:runs`;
});
afterEach(async () => {
  await killAll();
  await expectCleanState(queueRedis.url, prefix);
});

async function gatewayWith(flags: string[] = []): Promise<RunningPart> {
  return inProcessGateway(APP, queueRedis.url, prefix, flags);
}

function worker(flags: string[] = []): Promise<SwitchyardProcess> {
  return startSwitchyard('worker', ['--app', APP, '--redis', queueRedis.url, '--prefix', prefix, ...flags], {
    RECORD_URL: recordRedis.url,
    RECORD_KEY: recordKey,
  });
}

async function runs(): Promise<Run[]> {
  return (await records.lrange(recordKey, 0, -1)).map((r) => JSON.parse(r) as Run);
}

async function enqueueMany(address: string, n: number, body: (i: number) => Record<string, unknown>, url = '/record'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 100) {
    const answers = await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => send(url, { address, level: 1, content: body(i + j) })));
    for (const a of answers) {
      expect(a.status).toBe(201);
      ids.push((a.data as { id: string }).id);
    }
  }
  return ids;
}

function report(line: string): void {
  process.stdout.write(`[reliability] ${line}\n`);
}

/** A gateway per test of a describe block; `address` is the current one's. */
function gatewayForEachTest(): { readonly address: string } {
  let gateway: RunningPart;
  beforeEach(async () => {
    gateway = await gatewayWith();
  });
  afterEach(() => gateway.stop());
  return {
    get address() {
      return `127.0.0.1:${gateway.port}`;
    },
  };
}

describe('retries and dead letters', () => {
  const each = gatewayForEachTest();

  test('a job that throws is retried with backoff until it succeeds', async () => {
    await worker(['--attempts', '5', '--backoff', '100ms']);
    await send('/fail', { address: each.address, content: { succeedAt: 3 } });
    expect(await waitFor(async () => (await runs()).length >= 3, 10_000)).toBe(true);
    await sleep(300);
    const all = await runs();
    expect(all.map((r) => r.attempt)).toEqual([1, 2, 3]);
    const stats = await queue.hgetall(keysFor(prefix).stats);
    expect(stats).toMatchObject({ 'L1:retried': '2', 'L1:done': '1' });
  });

  test('after the last attempt, and at once on a 4xx, a job goes to the capped dead list; the dead command requeues and purges', async () => {
    await worker(['--attempts', '3', '--backoff', '50ms', '--dead-max', '2']);
    const failing = (await send('/fail', { address: each.address, content: { never: true } })).data as { id: string };
    expect(await waitFor(async () => (await runs()).length >= 3, 10_000)).toBe(true);
    const cli = (...args: string[]): string =>
      execFileSync(process.execPath, [BIN, 'dead', ...args, '--redis', queueRedis.url, '--prefix', prefix], { encoding: 'utf8' });
    expect(await waitFor(() => JSON.parse(cli('list', '--json')).length === 1, 5000)).toBe(true);
    const [entry] = JSON.parse(cli('list', '--json'));
    expect(entry).toMatchObject({ attempts: 3, status: '500', error: 'planned failure on attempt 3', job: { id: failing.id, url: '/fail' } });
    expect(entry.failedAt).toBeGreaterThan(Date.now() - 60_000);

    // 4xx: dead at once, one run only.
    const rejected = (await send('/reject', { address: each.address })).data as { id: string };
    expect(await waitFor(() => JSON.parse(cli('list', '--json')).length === 2, 5000)).toBe(true);
    expect((await runs()).filter((r) => r.id === rejected.id)).toHaveLength(1);
    expect(cli('list')).toContain(`${rejected.id}  L1 POST /reject  attempts=1 status=422`);

    // The cap: a third dead job trims the oldest, counted.
    await send('/reject', { address: each.address });
    expect(await waitFor(async () => (await queue.hget(keysFor(prefix).stats, 'dead:trimmed')) === '1', 5000)).toBe(true);
    expect(JSON.parse(cli('list', '--json'))).toHaveLength(2);

    // Requeue one by id: it runs again with a fresh attempt count.
    const before = (await runs()).filter((r) => r.id === rejected.id).length;
    expect(cli('requeue', rejected.id)).toContain(`job ${rejected.id} requeued`);
    expect(await waitFor(async () => (await runs()).filter((r) => r.id === rejected.id).length === before + 1, 5000)).toBe(true);
    expect(cli('purge')).toMatch(/dead job\(s\) purged/);
    expect(await waitFor(() => JSON.parse(cli('list', '--json')).length === 0, 5000)).toBe(true);
  });
});

describe('workers that die or stop in the middle of 1,000 jobs', () => {
  const each = gatewayForEachTest();

  test('SIGKILL: every job completes, none is lost; duplicates only from the killed worker', async () => {
    const [victim, survivor] = await Promise.all([worker(['--concurrency', '20', '--lease', '2s']), worker(['--concurrency', '20', '--lease', '2s'])]);
    const ids = await enqueueMany(each.address, 1000, (i) => ({ i, sleep: 40 }));
    expect(await waitFor(async () => (await records.llen(recordKey)) >= 300, 30_000)).toBe(true);
    victim.kill('SIGKILL');
    await victim.exited;
    expect(await waitFor(async () => new Set((await runs()).map((r) => r.id)).size >= 1000, 60_000)).toBe(true);
    await sleep(500);
    const all = await runs();
    const unique = new Set(all.map((r) => r.id));
    expect(unique).toEqual(new Set(ids));
    const duplicates = all.length - unique.size;
    expect(duplicates).toBeLessThanOrEqual(20); // at most what the victim held
    expect(all.filter((r) => r.attempt === 2).every((r) => r.pid === survivor.child.pid)).toBe(true);
    const recovered = Number(await queue.hget(keysFor(prefix).stats, 'L1:recovered'));
    expect(all.filter((r) => r.attempt === 2)).toHaveLength(recovered);
    // The app records a run when its handler ends: a run cut short by the kill is not a duplicate.
    report(
      `SIGKILL: 1000 accepted, ${unique.size} run, 0 lost, ${recovered} handed back after the lease and run again (attempt 2), ${duplicates} duplicates (runs that ended but whose ack died with the worker)`,
    );
  });

  test('SIGTERM: the worker finishes what it runs, exits 0, every job completes exactly once', async () => {
    const [victim] = await Promise.all([worker(['--concurrency', '20', '--grace', '10s']), worker(['--concurrency', '20'])]);
    const ids = await enqueueMany(each.address, 1000, (i) => ({ i, sleep: 40 }));
    expect(await waitFor(async () => (await records.llen(recordKey)) >= 300, 30_000)).toBe(true);
    victim.kill('SIGTERM');
    expect(await victim.exited).toBe(0);
    expect(await waitFor(async () => (await records.llen(recordKey)) >= 1000, 60_000)).toBe(true);
    await sleep(500);
    const all = await runs();
    expect(all.map((r) => r.id).sort()).toEqual([...ids].sort());
    report(`SIGTERM: 1000 accepted, ${all.length} runs, 0 lost, ${all.length - 1000} duplicates`);
  });

  test('SIGTERM with jobs longer than the grace period: they are handed back at once, not after the lease', async () => {
    const victim = await worker(['--concurrency', '5', '--grace', '300ms', '--lease', '60s']);
    const ids = await enqueueMany(each.address, 5, (i) => ({ i, sleep: 2000 }));
    expect(await waitFor(async () => (await queue.hlen(keysFor(prefix).workerJobs(victim.ready.id))) === 5, 5000)).toBe(true);
    const stoppedAt = Date.now();
    victim.kill('SIGTERM');
    expect(await victim.exited).toBe(0);
    expect(await queue.llen(keysFor(prefix).queue(1, 'execute'))).toBe(5);
    await worker(['--concurrency', '5']);
    expect(await waitFor(async () => (await records.llen(recordKey)) >= 5, 15_000)).toBe(true);
    expect(Date.now() - stoppedAt).toBeLessThan(30_000); // far less than the 60 s lease
    expect(new Set((await runs()).map((r) => r.id))).toEqual(new Set(ids));
  });

  test('a second signal exits at once', async () => {
    const victim = await worker(['--concurrency', '2', '--grace', '60s']);
    await enqueueMany(each.address, 2, () => ({ sleep: 30_000 }));
    expect(await waitFor(async () => (await queue.hlen(keysFor(prefix).workerJobs(victim.ready.id))) === 2, 5000)).toBe(true);
    victim.kill('SIGTERM');
    await sleep(200);
    victim.kill('SIGTERM');
    const code = await Promise.race([victim.exited, sleep(5000).then(() => 'still running')]);
    expect(code).toBe(130);
  });
});

test('a gateway on SIGTERM answers the calls in flight, refuses new ones, and exits 0', async () => {
  const gw = await startSwitchyard('gateway', ['--app', APP, '--redis', queueRedis.url, '--prefix', prefix, '--port', '0', '--host', '127.0.0.1'], {
    RECORD_URL: recordRedis.url,
  });
  const address = `127.0.0.1:${gw.ready.port}`;
  const inFlight = Array.from({ length: 5 }, () => call('/slow?ms=800', { address, timeout: 5 }));
  await sleep(200);
  gw.kill('SIGTERM');
  const answers = await Promise.all(inFlight);
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
  expect(await gw.exited).toBe(0);
  await expect(call('/ping', { address, timeout: 1 })).rejects.toThrow(/UNAVAILABLE|ECONNREFUSED|No connection/);
});

test('Redis stopped and restarted (appendonly) under steady load: sync never fails, async fails only with 503, every 201 runs', async () => {
  const gateway = await gatewayWith();
  const address = `127.0.0.1:${gateway.port}`;
  await worker(['--concurrency', '20']);
  const accepted: string[] = [];
  const asyncStatuses = new Map<number, number>();
  const syncFailures: string[] = [];
  let syncCalls = 0;
  let stop = false;
  const readiness: number[] = [];
  const adminPort = gateway.adminPort;

  const unavailable = new Set<string>();
  const asyncLoop = async (): Promise<void> => {
    for (let i = 0; !stop && i < 20_000; i++) {
      const a = await send('/record', { address, level: 1, content: { i }, deadline: 5 });
      asyncStatuses.set(a.status, (asyncStatuses.get(a.status) ?? 0) + 1);
      if (a.status === 201) accepted.push((a.data as { id: string }).id);
      if (a.status === 503) unavailable.add(String(a.data));
      await sleep(5);
    }
  };
  const syncLoop = async (): Promise<void> => {
    for (let i = 0; !stop && i < 20_000; i++) {
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
  const readyz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status;

  const loops = [asyncLoop(), asyncLoop(), syncLoop()];
  await sleep(1500);
  readiness.push(await readyz());
  await queueRedis.stop();
  await sleep(1500);
  readiness.push(await readyz());
  await queueRedis.restart();
  expect(await waitFor(async () => (await readyz()) === 200, 10_000)).toBe(true);
  readiness.push(await readyz());
  await sleep(1500);
  stop = true;
  await Promise.all(loops);
  // The gateway's own metrics saw the same calls.
  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const metric = (series: string): number => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
  await gateway.stop();

  expect(metric('switchyard_calls_total{kind="sync",status="200"}')).toBe(syncCalls);
  expect(metric('switchyard_call_seconds_count{kind="sync"}')).toBe(syncCalls);
  expect(metric('switchyard_calls_total{kind="async",status="201"}')).toBeGreaterThanOrEqual(accepted.length);
  expect(syncFailures).toEqual([]);
  // Calls wait for the connection within their deadline, so an outage need not produce a 503;
  // one that does says what is known, in our words, not ioredis' ("Stream isn't writeable…").
  expect([...asyncStatuses.keys()].every((status) => status === 201 || status === 503)).toBe(true);
  for (const m of unavailable) expect(m).toMatch(/^queue unavailable: (not queued|outcome unknown): /);
  expect(readiness).toEqual([200, 503, 200]);
  const allRun = await waitFor(async () => {
    const seen = new Set((await runs()).map((r) => r.id));
    return accepted.every((id) => seen.has(id));
  }, 30_000);
  if (!allRun) {
    const seen = new Set((await runs()).map((r) => r.id));
    const q = queue;
    const workers = await q.zrange(keysFor(prefix).workers, 0, -1);
    const held = await Promise.all(workers.map((w) => q.hkeys(keysFor(prefix).workerJobs(w))));
    report(
      `missing: ${JSON.stringify(accepted.filter((id) => !seen.has(id)))}; held by workers: ${JSON.stringify(held)}; waiting: ${await q.llen(keysFor(prefix).queue(1, 'execute'))}`,
    );
  }
  expect(allRun).toBe(true);
  const all = await runs();
  report(
    `Redis outage: ${syncCalls} sync calls, 0 failed; async ${JSON.stringify(Object.fromEntries(asyncStatuses))}; ${accepted.length} accepted, all run, ${all.length - new Set(all.map((r) => r.id)).size} duplicates`,
  );
}, 90_000);
