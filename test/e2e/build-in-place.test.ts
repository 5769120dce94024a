// `npm run build` beside a running deployment (issue: a build that deleted dist/ first took
// `npm start` down with "Cannot find module"). The build compiles into a folder of its own and
// moves each file into dist/ with a rename: a gateway and worker running from dist/ keep serving
// sync calls, the dashboard and async calls, and a process started in the middle of the build
// loads whole files; outputs of deleted sources are removed once the new build is in place.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { call, closeClients, send } from '../../client';
import { BIN, killAll, ROOT, startSwitchyard, waitFor } from '../helpers/processes';
import { expectCleanState } from '../helpers/check-state';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');

let redis: TestRedis;
let records: Redis;
beforeAll(async () => {
  redis = await startRedis();
  records = new Redis(redis.url);
});
afterAll(async () => {
  closeClients();
  await killAll();
  records?.disconnect();
  await redis?.close();
});

/** A switchyard command in a process of its own: its exit code and what it printed. */
function run(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

test('npm run build beside `switchyard dev`: sync calls, the dashboard and async calls go on; commands started meanwhile run; stale outputs go', async () => {
  const prefix = uniquePrefix('build');
  const recordKey = `${prefix}:runs`;
  const dev = await startSwitchyard('dev', ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--port', '0', '--host', '127.0.0.1'], {
    RECORD_URL: redis.url,
    RECORD_KEY: recordKey,
  });
  const address = `127.0.0.1:${dev.ready.port}`;
  const admin = `http://127.0.0.1:${dev.ready.admin}`;
  const stale = path.join(ROOT, 'dist', 'shared', 'output-of-a-deleted-source.js');
  writeFileSync(stale, 'module.exports = 1;\n');

  const startedAt = Date.now();
  const build = spawn('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let buildOutput = '';
  build.stdout!.on('data', (d: Buffer) => (buildOutput += d.toString()));
  build.stderr!.on('data', (d: Buffer) => (buildOutput += d.toString()));
  let exitCode: number | null | undefined;
  const built = new Promise<void>((resolve) => build.once('exit', (code) => ((exitCode = code), resolve())));

  const failures: string[] = [];
  const ids: string[] = [];
  let syncCalls = 0;
  let pages = 0;
  let commands = 0;
  while (exitCode === undefined) {
    const ping = await call('/ping', { address });
    if (ping.status === 200) syncCalls++;
    else failures.push(`sync /ping: ${ping.status} ${JSON.stringify(ping.data)}`);
    for (const page of ['/', '/assets/dashboard.js', '/metrics']) {
      const res = await fetch(`${admin}${page}`);
      if (res.status === 200) pages++;
      else failures.push(`admin ${page}: ${res.status}`);
    }
    const sent = await send('/record', { address, level: 1, content: { n: ids.length } });
    if (sent.status === 201) ids.push((sent.data as { id: string }).id);
    else failures.push(`async /record: ${sent.status} ${JSON.stringify(sent.data)}`);
    // A new process, loading dist/ while the build moves files into it.
    const stats = await run(['stats', '--redis', redis.url, '--prefix', prefix]);
    if (stats.code === 0) commands++;
    else failures.push(`switchyard stats exited ${stats.code}: ${stats.out.split('\n')[0]}`);
  }
  await built;
  const buildMs = Date.now() - startedAt;
  process.stdout.write(
    `[build-in-place] npm run build took ${buildMs} ms; meanwhile ${syncCalls} sync calls, ${pages} admin pages, ${ids.length} async calls, ${commands} \`switchyard stats\` processes, ${failures.length} failures\n`,
  );
  expect({ exitCode, output: exitCode === 0 ? '' : buildOutput }).toEqual({ exitCode: 0, output: '' });
  expect(failures).toEqual([]);
  expect(syncCalls).toBeGreaterThan(0);
  expect(commands).toBeGreaterThan(0);
  // Every async call accepted during the build ran.
  expect(
    await waitFor(async () => new Set((await records.lrange(recordKey, 0, -1)).map((r) => (JSON.parse(r) as { id: string }).id)).size >= ids.length, 15_000),
  ).toBe(true);
  // After: the same process still serves, the stale output is gone, no build folder is left.
  expect((await call('/ping', { address })).status).toBe(200);
  expect(existsSync(stale)).toBe(false);
  expect(existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))).toBe(true);
  expect(readdirSync(ROOT).filter((name) => name.startsWith('dist.next-'))).toEqual([]);
  dev.kill('SIGTERM');
  await dev.exited;
  await expectCleanState(redis.url, prefix);
}, 240_000);
