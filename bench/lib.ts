// Shared pieces of the benchmarks: child processes with a ready line, a private Redis,
// h2load with a pre-framed unary gRPC request, medians and percentiles.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { startPrivateRedis } from '../cli/private-redis';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export interface Child {
  child: ChildProcess;
  fields: Record<string, string>;
  stop(): Promise<void>;
}

/** Spawns `node args…` and waits for a stdout line containing `readyWord` (fields k=v parsed). */
export async function startNode(args: string[], readyWord: string, env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const fields = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} not ready:\n${out}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes(readyWord));
      if (line) {
        clearTimeout(timer);
        // Switchyard logs JSON lines; the other systems' helpers print "word=value" lines.
        if (line.startsWith('{')) resolve(Object.fromEntries(Object.entries(JSON.parse(line) as Record<string, unknown>).map(([k, v]) => [k, String(v)])));
        else resolve(Object.fromEntries([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]])));
      }
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}:\n${out}`)));
  });
  return {
    child,
    fields,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => {
          children.delete(child);
          resolve();
        });
        child.kill('SIGKILL');
      }),
  };
}

/**
 * A Switchyard gateway on loopback with ephemeral ports, started through `root`'s
 * `bin/switchyard.js` (this checkout's by default, another build's for a comparison);
 * `fields.port` is its gRPC port.
 */
export function startGateway(options: {
  app: string;
  redis: string;
  prefix: string;
  root?: string;
  flags?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<Child> {
  const bin = options.root === undefined ? 'bin/switchyard.js' : path.join(options.root, 'bin', 'switchyard.js');
  const args = [bin, 'gateway', '--app', options.app, '--redis', options.redis, '--prefix', options.prefix, ...(options.flags ?? [])];
  return startNode([...args, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'], 'gateway ready', options.env);
}

/** A private redis-server on a free port, no persistence (the one `switchyard dev` starts). */
export async function startRedisServer(): Promise<{ url: string; stop(): void }> {
  const redis = await startPrivateRedis();
  if (!redis) throw new Error('redis-server is not on PATH or did not answer');
  return { url: redis.url, stop: () => redis.child.kill('SIGKILL') };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** A gRPC unary request body: 5-byte frame header, then Input{params} encoded by hand. */
export function grpcRequestBody(params: string): Buffer {
  const body = Buffer.from(params, 'utf8');
  const len: number[] = [];
  for (let n = body.length; ; n >>>= 7) {
    if (n <= 0x7f) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  const message = Buffer.concat([Buffer.from([0x0a, ...len]), body]);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(message.length, 1);
  return Buffer.concat([frame, message]);
}

export function ensureH2load(): string {
  if (spawnSync('h2load', ['--version']).status === 0) return 'h2load';
  if (process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0) {
    process.stderr.write('installing h2load (nghttp2-client)…\n');
    spawnSync('apt-get', ['install', '-y', '-qq', 'nghttp2-client'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load is missing: apt-get install -y nghttp2-client');
  return 'h2load';
}

export interface LoadResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  failed: number;
}

/** h2load: `clients` connections × `streams` streams in flight, `requests` in all. */
export function h2load(port: number, params: string, opts: { requests: number; clients: number; streams: number }): LoadResult {
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-h2load-'));
  try {
    const bodyFile = path.join(dir, 'body');
    const logFile = path.join(dir, 'log');
    writeFileSync(bodyFile, grpcRequestBody(params));
    const out = execFileSync(
      'h2load',
      [
        '-n',
        String(opts.requests),
        '-c',
        String(opts.clients),
        '-m',
        String(opts.streams),
        '-t',
        '1',
        '-d',
        bodyFile,
        '-H',
        'content-type: application/grpc',
        '-H',
        'te: trailers',
        `--log-file=${logFile}`,
        `http://127.0.0.1:${port}/rpc.RPCServer/handel`,
      ],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
    );
    const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
    const failed = Number(/requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed/.exec(out)?.[1] ?? NaN);
    const durations = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => Number(line.split('\t')[2]) / 1000);
    return { rps, p50ms: percentile(durations, 50), p99ms: percentile(durations, 99), failed };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function versionOf(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
