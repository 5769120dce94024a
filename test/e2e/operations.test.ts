// What an operator relies on, tried on real processes: a 5xx never leaks its message to the
// caller but reaches the log; every event is one JSON line; a process whose port is taken
// stops with one line and leaves nothing in Redis; the gateway's /metrics carries the queue
// gauges and the worker's carries its running jobs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { call, closeClients, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { BIN, inProcessGateway, killAll, logLines, startSwitchyard, waitFor } from '../helpers/processes';
import { expectCleanState } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');

let server: TestRedis;
let redis: Redis;
let prefix: string;

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
  prefix = uniquePrefix('ops');
});
afterEach(async () => {
  await killAll();
  await expectCleanState(server.url, prefix);
});

test("a thrown error's message reaches the log, never the caller; ctx.throw(409, msg) answers its message", async () => {
  const gateway = await startSwitchyard('gateway', [
    '--app',
    APP,
    '--redis',
    server.url.replace('//', '//:s3cret@'),
    '--prefix',
    prefix,
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--token',
    'tok3n',
  ]);
  const address = `127.0.0.1:${gateway.ready.port}`;
  const answer = await call('/leak', { address, token: 'tok3n' });
  expect(answer).toMatchObject({ status: 500, data: 'Internal Server Error' });
  expect(answer.raw).not.toContain('hunter2');
  expect(await call('/taken', { address, token: 'tok3n' })).toMatchObject({ status: 409, data: 'taken' });

  expect(await waitFor(() => logLines(gateway.output()).some((l) => l.event === 'route_error'), 3000)).toBe(true);
  const lines = logLines(gateway.output());
  const routeError = lines.find((l) => l.event === 'route_error')!;
  expect(routeError).toMatchObject({ level: 'error', method: 'GET', url: '/leak', status: 500, err: { message: 'db password is hunter2' } });
  expect((routeError.err as { stack: string }).stack).toMatch(/^Error: db password is hunter2\n\s+at /);
  // The start line summarises the configuration, secrets replaced.
  const start = lines.find((l) => l.event === 'start')!;
  expect(start).toMatchObject({ level: 'info', command: 'gateway', config: { token: '***', prefix } });
  expect(JSON.stringify(start)).not.toMatch(/s3cret|tok3n/);
  expect((start.config as { redis: string }).redis).toMatch(/^redis:\/\/\*\*\*@127\.0\.0\.1:\d+$/);
  for (const line of lines) expect(typeof line.time).toBe('string');
  // Shutdown is logged with its counts.
  gateway.kill('SIGTERM');
  expect(await gateway.exited).toBe(0);
  expect(logLines(gateway.output()).find((l) => l.event === 'shutdown')).toMatchObject({ part: 'gateway', inFlight: 0, unanswered: 0 });
});

test('a job that throws: its dead-letter entry keeps the full message for operators', async () => {
  const gateway = await inProcessGateway(APP, server.url, prefix);
  try {
    await startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, '--attempts', '1']);
    await send('/leak', { address: `127.0.0.1:${gateway.port}`, level: 1 });
    expect(await waitFor(async () => (await redis.llen(keysFor(prefix).dead)) === 1, 5000)).toBe(true);
    const [entry] = await redis.lrange(keysFor(prefix).dead, 0, -1);
    expect(JSON.parse(entry)).toMatchObject({ status: '500', error: 'db password is hunter2' });
  } finally {
    await gateway.stop();
  }
});

test('a second worker on a taken admin port exits with one line and leaves nothing in Redis; the next call runs at once', async () => {
  const gateway = await inProcessGateway(APP, server.url, prefix);
  const recordKey = `${prefix}:runs`;
  const env = { RECORD_URL: server.url, RECORD_KEY: recordKey };
  try {
    const first = await startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix], env);
    const k = keysFor(prefix);
    expect(await waitFor(async () => (await redis.zcard(k.idle(1))) === 1, 5000)).toBe(true);
    const takenPort = first.ready.admin;
    let stderr = '';
    let status = 0;
    try {
      execFileSync(process.execPath, [BIN, 'worker', '--app', APP, '--redis', server.url, '--prefix', prefix, '--admin-port', takenPort], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        stdio: 'pipe',
      });
    } catch (err) {
      ({ stderr, status } = err as { stderr: string; status: number });
    }
    expect(status).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      `switchyard worker: --admin-port ${takenPort} is already in use on 0.0.0.0 (another switchyard process?): give each process its own --admin-port, or --admin-port 0 for any free port`,
    ]);
    expect(await redis.zrange(k.workers, 0, -1)).toEqual([first.ready.id]);
    expect(await redis.zrange(k.idle(1), 0, -1)).toEqual([first.ready.id]);
    expect(await redis.zrange(k.idle(2), 0, -1)).toEqual([first.ready.id]);
    const sentAt = Date.now();
    await send('/record', { address: `127.0.0.1:${gateway.port}`, level: 1, content: { n: 1 } });
    expect(await waitFor(async () => (await redis.llen(recordKey)) === 1, 3000)).toBe(true);
    process.stdout.write(`[ops] the call after the failed start ran ${Date.now() - sentAt} ms after it was sent\n`);
  } finally {
    await gateway.stop();
  }
});

test('a second gateway on a taken gRPC port exits with one line naming --port', async () => {
  const first = await startSwitchyard('gateway', ['--app', APP, '--redis', server.url, '--prefix', prefix, '--port', '0', '--host', '127.0.0.1']);
  let stderr = '';
  let status = 0;
  try {
    execFileSync(
      process.execPath,
      [BIN, 'gateway', '--app', APP, '--redis', server.url, '--prefix', prefix, '--port', first.ready.port, '--admin-port', '0', '--host', '127.0.0.1'],
      { encoding: 'utf8', stdio: 'pipe' },
    );
  } catch (err) {
    ({ stderr, status } = err as { stderr: string; status: number });
  }
  expect(status).toBe(2);
  expect(stderr.trim().split('\n')).toEqual([
    `switchyard gateway: --port ${first.ready.port} is already in use on 127.0.0.1 (another switchyard process?): give each process its own --port, or --port 0 for any free port`,
  ]);
});

function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('/metrics: queue gauges on the gateway equal what was enqueued; running jobs and live workers move', async () => {
  const gateway = await inProcessGateway(APP, server.url, prefix, ['--capacity', '10']);
  const address = gateway.address;
  const scrape = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  try {
    for (let i = 0; i < 3; i++) await send('/record', { address, level: 1, content: { i } });
    for (let i = 0; i < 2; i++) await send(`/record?k=${i}`, { address, level: 1, policy: 'last' });
    await send('/record', { address, level: 1, policy: 'last', key: 'record?k=0' });
    for (let i = 0; i < 9; i++) await send('/record', { address, level: 2, policy: 'discard', content: { i } });
    await redis.lpush(keysFor(prefix).dead, '{"failedAt":1,"attempts":1,"status":"500","error":"x","job":{}}');
    await new Promise((r) => setTimeout(r, 1100)); // past the 1 s cache, and some age to see
    const text = await scrape(gateway.adminPort);
    const expected: Record<string, number> = {
      'switchyard_queue_backlog{level="1",policy="execute"}': 3,
      'switchyard_queue_backlog{level="1",policy="last"}': 3,
      'switchyard_queue_backlog{level="1",policy="discard"}': 0,
      'switchyard_queue_backlog{level="2",policy="execute"}': 0,
      'switchyard_queue_backlog{level="2",policy="last"}': 0,
      // 9 > 80% of 10: accepted, then level 2 turns off; discard drops past 60% (6) first.
      'switchyard_queue_backlog{level="2",policy="discard"}': 6,
      switchyard_level2_active: 1,
      switchyard_dead_jobs: 1,
      switchyard_workers_live: 0,
      switchyard_retries_waiting: 0,
    };
    for (const [series, value] of Object.entries(expected)) expect([series, metric(text, series)]).toEqual([series, value]);
    const age = metric(text, 'switchyard_queue_oldest_age_seconds{level="1"}')!;
    expect(age).toBeGreaterThanOrEqual(1);
    expect(age).toBeLessThan(30);
    expect(metric(text, 'switchyard_queue_oldest_age_seconds{level="2"}')).toBeGreaterThanOrEqual(1);

    // A worker running two slow jobs: its own gauge, and the deployment's live workers.
    // Emptied by hand, with what points into them (the index, the newest marks): the checker at the end sees a consistent state.
    const k = keysFor(prefix);
    await redis.del(k.queue(1, 'execute'), k.queue(1, 'last'), k.order(1), k.queue(2, 'discard'), k.jobs, k.newest(1));
    const worker = await startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, '--concurrency', '4'], {
      RECORD_URL: server.url,
      RECORD_KEY: `${prefix}:runs`,
    });
    for (let i = 0; i < 2; i++) await send('/record', { address, level: 1, content: { sleep: 3000 } });
    const workerAdmin = Number(worker.ready.admin);
    expect(await waitFor(async () => metric(await scrape(workerAdmin), 'switchyard_jobs_running') === 2, 3000)).toBe(true);
    expect(await waitFor(async () => metric(await scrape(gateway.adminPort), 'switchyard_workers_live') === 1, 3000)).toBe(true);
    expect(await waitFor(async () => metric(await scrape(workerAdmin), 'switchyard_jobs_running') === 0, 6000)).toBe(true);
  } finally {
    await gateway.stop();
  }
}, 30_000);

describe('the command line a new user meets', () => {
  const run = (args: string[]): { status: number; stdout: string; stderr: string } => {
    try {
      return { status: 0, stdout: execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8', stdio: 'pipe' }), stderr: '' };
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string };
      return { status: e.status, stdout: e.stdout, stderr: e.stderr };
    }
  };

  test('dead: an unknown action and an unknown id say so in one line', () => {
    expect(run(['dead', 'bogus', '--redis', server.url, '--prefix', prefix])).toMatchObject({
      status: 2,
      stderr: 'switchyard dead: unknown action "bogus" (list, requeue <id>|all, delete <id>, purge)\n',
    });
    expect(run(['dead', 'delete', '--redis', server.url, '--prefix', prefix])).toMatchObject({
      status: 2,
      stderr: 'switchyard dead: delete needs a job id (purge empties the whole list)\n',
    });
    expect(run(['dead', 'requeue', 'nope', '--redis', server.url, '--prefix', prefix])).toMatchObject({ status: 1, stderr: 'no dead job has id nope\n' });
  });

  test('dead delete <id> removes that one dead job, the others stay; delete <id> of a dead job points there', async () => {
    const gateway = await inProcessGateway(APP, server.url, prefix);
    try {
      await startSwitchyard('worker', ['--app', APP, '--redis', server.url, '--prefix', prefix, '--attempts', '1'], {
        RECORD_URL: server.url,
        RECORD_KEY: `${prefix}:runs`,
      });
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push(((await send('/fail', { address: gateway.address, level: 1, content: { i } })).data as { id: string }).id);
      expect(await waitFor(async () => (await redis.llen(keysFor(prefix).dead)) === 3, 10_000)).toBe(true);
      const flags = ['--redis', server.url, '--prefix', prefix];
      expect(run(['delete', ids[1], ...flags])).toMatchObject({
        status: 1,
        stderr: `job ${ids[1]} is in the dead list: switchyard dead delete ${ids[1]} removes it (dead requeue ${ids[1]} runs it again)\n`,
      });
      expect(run(['dead', 'delete', ids[1], ...flags])).toMatchObject({ status: 0, stdout: `dead job ${ids[1]} deleted\n` });
      const left = (JSON.parse(run(['dead', 'list', '--json', ...flags]).stdout) as Array<{ job: { id: string } }>).map((e) => e.job.id);
      expect(left.sort()).toEqual([ids[0], ids[2]].sort());
      expect(run(['job', ids[1], ...flags]).stdout).toContain('unknown');
      expect(run(['dead', 'delete', ids[1], ...flags])).toMatchObject({ status: 1, stderr: `no dead job has id ${ids[1]}\n` });
      expect((JSON.parse(run(['stats', '--json', ...flags]).stdout) as { counters: Record<string, number> }).counters['dead:deleted']).toBe(1);
      expect(run(['dead', 'purge', ...flags])).toMatchObject({ status: 0, stdout: '2 dead job(s) purged\n' });
    } finally {
      await gateway.stop();
    }
  });

  test('stats --watch piped into a reader that goes away ends quietly', () => {
    const script = `set -o pipefail; "${process.execPath}" "${BIN}" stats --watch 100ms --json --redis ${server.url} --prefix ${prefix} 2>stats.err | head -n 2; echo "status $?"; cat stats.err`;
    const dir = mkdtempSync(path.join(tmpdir(), 'sy-epipe-'));
    try {
      const lines = execFileSync('bash', ['-c', script], { cwd: dir, encoding: 'utf8', stdio: 'pipe', timeout: 10_000 }).trim().split('\n');
      expect(JSON.parse(lines[0])).toHaveProperty('queues');
      expect(lines.slice(2)).toEqual(['status 0']); // and nothing on stderr
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
