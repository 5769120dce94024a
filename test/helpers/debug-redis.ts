// A redis-server from PATH that a test may slow down, pause and fill: started with
// `--enable-debug-command yes` (DEBUG SLEEP), on a free loopback port, killed by the test.
// test/helpers/redis.ts stays the helper for tests that only need a Redis.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { freePort } from '../../cli/free-port';

export interface DebugRedis {
  url: string;
  port: number;
  /** A plain client for the test's own commands (DEBUG SLEEP, CLIENT PAUSE, CONFIG SET). */
  admin: Redis;
  /** SIGTERM, waited for. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is saved). */
  start(): Promise<void>;
  close(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

async function answers(port: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return true;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function startDebugRedis(extraArgs: string[] = []): Promise<DebugRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-debug-redis-'));
  let child: ChildProcess | undefined;
  const running = (c: ChildProcess | undefined): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null;
  const start = async (): Promise<void> => {
    // Starting a server that runs already would spawn a second one that cannot bind the port, and
    // lose the handle on the first (left running after the test: it was seen in every run).
    if (running(child)) return;
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--enable-debug-command',
      'yes',
      ...extraArgs,
    ];
    child = spawn('redis-server', args, { stdio: 'ignore' });
    children.add(child);
    const c = child;
    c.once('exit', () => children.delete(c));
    if (!(await answers(port, 10_000))) throw new Error(`redis-server did not answer on port ${port}`);
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!running(c)) return;
    await new Promise((resolve) => {
      c.once('exit', resolve);
      c.kill(signal);
    });
  };
  await start();
  // The test's own client reconnects by itself after stop/start.
  const admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  admin.on('error', () => undefined);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    admin,
    stop: () => halt('SIGTERM'),
    start,
    async close() {
      admin.disconnect();
      await halt('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
