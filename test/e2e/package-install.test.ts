// The package as a user gets it: `npm pack`, install the tarball into an empty project that
// brings its own koa, run gateway and worker from that install, call them with its client.
// Catches what the repository checkout hides: files left out of `files`, paths that only
// resolve inside the repo, dependencies that are only devDependencies.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../cli/free-port';
import { ROOT, waitFor } from '../helpers/processes';
import { expectCleanRedis, failureOf } from '../helpers/check-state';
import { startRedis, type TestRedis } from '../helpers/redis';

const NAME = '@switchyard-rpc/switchyard';

const APP = `'use strict';
const { appendFileSync } = require('node:fs');
const Koa = require('koa');
const Router = require('@koa/router');

const router = new Router();
router.get('/hello/:name', (ctx) => { ctx.body = { hello: ctx.params.name }; });
router.post('/jobs', (ctx) => {
  appendFileSync(process.env.JOBS_FILE, JSON.stringify(ctx.request.body) + '\\n');
  ctx.status = 204;
});
const app = new Koa();
app.use(router.routes()).use(router.allowedMethods());
module.exports = app;
`;

interface Started {
  child: ChildProcess;
  output(): string;
}

let redis: TestRedis;
let tmp: string;
const started: Started[] = [];
let client: typeof import('../../index') | undefined;

beforeAll(async () => {
  redis = await startRedis();
  tmp = mkdtempSync(path.join(tmpdir(), 'sy-package-'));
});
afterAll(async () => {
  client?.closeClients();
  await Promise.all(started.map(({ child }) => stop(child)));
  rmSync(tmp, { recursive: true, force: true });
  const problems = redis ? await failureOf(expectCleanRedis(redis.url)) : null;
  await redis?.close();
  if (problems) throw problems;
});

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Runs the installed bin and waits until its admin port answers /readyz with 200. */
async function startInstalled(command: 'gateway' | 'worker', adminPort: number, flags: string[]): Promise<void> {
  const bin = path.join(tmp, 'node_modules', '.bin', 'switchyard');
  const child = spawn(bin, [command, '--app', 'app.js', '--redis', redis.url, '--admin-port', String(adminPort), ...flags], {
    cwd: tmp,
    env: { ...process.env, JOBS_FILE: path.join(tmp, 'jobs.log') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  started.push({ child, output: () => out });
  const ready = await waitFor(
    async () => {
      if (child.exitCode !== null) return true;
      try {
        return (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    20_000,
    100,
  );
  if (!ready || child.exitCode !== null) throw new Error(`installed switchyard ${command} not ready (exit ${child.exitCode}):\n${out}`);
}

test('the packed tarball installs and runs: gateway, worker, client', async () => {
  const begin = Date.now();
  const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
  const tarball = path.join(tmp, packed.trim().split('\n').pop()!);
  const entries = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
  console.log(`${path.basename(tarball)}: ${statSync(tarball).size} bytes, ${entries.length} files`);
  expect(entries.some((e) => e.endsWith('.lua'))).toBe(true);
  expect(entries.filter((e) => e.startsWith('package/dist/bench/'))).toEqual([]);

  writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'user-app', version: '1.0.0', private: true }));
  writeFileSync(path.join(tmp, 'app.js'), APP);
  const installed = spawnSync('npm', ['install', tarball, 'koa', '@koa/router', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: tmp, encoding: 'utf8' });
  expect(installed.status).toBe(0);
  // npm 11 lists every installed package with an install script (prepare, install …) for approval: not ours, which needs none.
  const said = `${installed.stdout}\n${installed.stderr}`;
  expect(said.split('\n').filter((line) => line.includes(NAME))).toEqual([]);
  console.log(`packed and installed in ${Date.now() - begin} ms`);

  const [port, gatewayAdmin, workerAdmin] = [await freePort(), await freePort(), await freePort()];
  await startInstalled('gateway', gatewayAdmin, ['--port', String(port), '--host', '127.0.0.1']);
  await startInstalled('worker', workerAdmin, []);
  // The dashboard's page is shipped as source (package.json "files"), not built: the install serves it.
  for (const asset of ['/', '/assets/dashboard.js', '/assets/dashboard.css']) {
    expect((await fetch(`http://127.0.0.1:${gatewayAdmin}${asset}`)).status).toBe(200);
  }

  // The package entry is the client and types: loading it loads no server code (no zod, no dispatch).
  const loaded = execFileSync(process.execPath, ['-e', `require(${JSON.stringify(NAME)}); console.log(JSON.stringify(Object.keys(require.cache)))`], {
    cwd: tmp,
    encoding: 'utf8',
  });
  const modules = JSON.parse(loaded) as string[];
  expect(modules.filter((m) => /node_modules\/(zod|koa|ioredis)\/|\/dist\/(server|worker|shared\/store|shared\/ops)\//.test(m))).toEqual([]);
  client = createRequire(path.join(tmp, 'package.json'))(NAME) as typeof import('../../index');
  const address = `127.0.0.1:${port}`;
  const hello = await client.call('/hello/ada', { address });
  expect(hello.status).toBe(200);
  expect(hello.data).toEqual({ hello: 'ada' });

  const queued = await client.send('/jobs', { address, level: 1, policy: 'execute', content: { n: 1 } });
  expect(queued.status).toBe(201);
  const jobs = path.join(tmp, 'jobs.log');
  const ran = await waitFor(() => existsSync(jobs) && readFileSync(jobs, 'utf8').trim() !== '', 15_000, 100);
  expect(ran).toBe(true);
  expect(
    readFileSync(jobs, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
  ).toEqual([{ n: 1 }]);
  console.log(`whole test ${Date.now() - begin} ms`);
}, 240_000);
