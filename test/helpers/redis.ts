// A real, isolated Redis per test suite: Testcontainers when a Docker engine answers, else
// redis-server from PATH on a free port, else REDIS_URL. Says which one it used.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from '../../cli/free-port';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';

export interface TestRedis {
  url: string;
  kind: 'testcontainers' | 'redis-server' | 'REDIS_URL';
  host: string;
  port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
  kill(): Promise<void>;
  close(): Promise<void>;
}

export function uniquePrefix(name: string): string {
  return `${name}-${randomBytes(4).toString('hex')}`;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

async function pingUntil(url: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') {
        client.disconnect();
        return true;
      }
    } catch {
      // not up yet
    }
    client.disconnect();
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** True when a Docker engine answers on its socket within a short time. */
async function dockerEngineAnswers(): Promise<boolean> {
  const socketPath = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice(7) : '/var/run/docker.sock';
  if (process.env.DOCKER_HOST && !process.env.DOCKER_HOST.startsWith('unix://')) return true;
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      socket.write('GET /_ping HTTP/1.0\r\n\r\n');
    });
    socket.once('data', (d) => done(d.toString().includes('200')));
  });
}

async function startContainer(appendonly: boolean): Promise<TestRedis> {
  const { RedisContainer } = await import('@testcontainers/redis');
  let container = await new RedisContainer('redis:7').withCommand(['redis-server', '--appendonly', appendonly ? 'yes' : 'no']).start();
  const url = () => container.getConnectionUrl();
  const handle: TestRedis = {
    kind: 'testcontainers',
    get url() {
      return url();
    },
    get host() {
      return container.getHost();
    },
    get port() {
      return container.getMappedPort(6379);
    },
    stop: async () => {
      await container.stop({ remove: false } as never);
    },
    restart: async () => {
      container = (await (container as unknown as { restart(): Promise<typeof container> }).restart?.()) ?? container;
    },
    kill: async () => {
      await container.stop({ timeout: 0 } as never);
    },
    close: async () => {
      await container.stop();
    },
  } as TestRedis;
  return handle;
}

async function startLocal(appendonly: boolean): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', appendonly ? 'yes' : 'no', '--dir', dir], {
      stdio: 'ignore',
    });
    children.add(child);
    if (!(await pingUntil(url, 10_000))) throw new Error(`redis-server did not answer on port ${port}`);
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise((resolve) => {
      c.once('exit', resolve);
      c.kill(signal);
    });
    children.delete(c);
  };
  await launch();
  return {
    kind: 'redis-server',
    url,
    host: '127.0.0.1',
    port,
    stop: () => halt('SIGTERM'),
    restart: async () => {
      await halt('SIGTERM');
      await launch();
    },
    kill: () => halt('SIGKILL'),
    close: async () => {
      await halt('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startRedis(options: { appendonly?: boolean } = {}): Promise<TestRedis> {
  const appendonly = options.appendonly ?? false;
  let redis: TestRedis | undefined;
  if (await dockerEngineAnswers()) {
    try {
      redis = await startContainer(appendonly);
    } catch (err) {
      process.stderr.write(`[test-redis] Testcontainers failed (${(err as Error).message.split('\n')[0]}); trying redis-server\n`);
    }
  }
  if (!redis && spawnSync('redis-server', ['--version']).status === 0) redis = await startLocal(appendonly);
  if (!redis && process.env.REDIS_URL) {
    const url = process.env.REDIS_URL;
    const u = new URL(url);
    const noop = async (): Promise<void> => {
      throw new Error('REDIS_URL: this test needs a Redis it can stop; install redis-server');
    };
    redis = { kind: 'REDIS_URL', url, host: u.hostname, port: Number(u.port || 6379), stop: noop, restart: noop, kill: noop, close: async () => undefined };
  }
  if (!redis) throw new Error('no Redis for tests: no Docker engine, no redis-server on PATH, no REDIS_URL');
  const version = redis.kind === 'redis-server' ? ` ${/v=(\S+)/.exec(spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? ''}` : '';
  process.stderr.write(`[test-redis] ${redis.kind}${version} on ${redis.host}:${redis.port}\n`);
  return redis;
}
