// Real switchyard processes for end-to-end tests: spawned from the built dist/ (npm test
// builds first), waited for until they print their ready line, killed for real.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { RunningPart } from '../../cli/running-part';
import { startGateway } from '../../cli/start-gateway';
import { loadApp } from '../../shared/call/app';
import { parseConfig } from '../../cli/config';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'switchyard.js');

export interface SwitchyardProcess {
  child: ChildProcess;
  /** Fields of the ready log lines, e.g. { port: '50051', admin: '9464', id: '...' }. */
  ready: Record<string, string>;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export async function startSwitchyard(command: 'gateway' | 'worker' | 'dev', flags: string[], env: NodeJS.ProcessEnv = {}): Promise<SwitchyardProcess> {
  const child = spawn(process.execPath, [BIN, command, '--admin-port', '0', ...flags], {
    cwd: ROOT,
    env: { ...process.env, SWITCHYARD_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  running.add(child);
  void exited.then(() => running.delete(child));
  // dev logs the gateway's ready line, then the worker's: wait for the last one.
  const lastPart = command === 'gateway' ? 'gateway' : 'worker';
  const ready = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`switchyard ${command} not ready after 15 s:\n${out}`)), 15_000);
    const check = (): void => {
      const lines = logLines(out).filter((l) => l.event === 'ready');
      if (!lines.some((l) => l.part === lastPart)) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve(Object.fromEntries(lines.flatMap((l) => Object.entries(l).map(([k, v]) => [k, String(v)]))));
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`switchyard ${command} exited (${code}) before ready:\n${out}`));
    });
  });
  return { child, ready, output: () => out, exited, kill: (signal = 'SIGTERM') => child.kill(signal) };
}

/** The JSON log lines in a process's output (other lines, such as a fatal one-liner on stderr, are skipped). */
export function logLines(output: string): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut in the middle of a write
    }
  }
  return lines;
}

const running = new Set<ChildProcess>();

/** Kills every process a test left behind (call in afterAll). */
export async function killAll(): Promise<void> {
  const waits = [...running].map(
    (child) =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(waits);
}

process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last result. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await sleep(everyMs);
  }
}

/**
 * A gateway in the test process (its calls are counted by the test's own metrics), on free
 * loopback ports, for the app at `app`, with the deployment's Redis and prefix.
 */
export async function inProcessGateway(app: string, redisUrl: string, prefix: string, flags: string[] = []): Promise<RunningPart & { address: string }> {
  const config = parseConfig('gateway', [
    '--app',
    app,
    '--redis',
    redisUrl,
    '--prefix',
    prefix,
    '--port',
    '0',
    '--admin-port',
    '0',
    '--host',
    '127.0.0.1',
    ...flags,
  ]);
  const gateway = await startGateway(config, await loadApp(app));
  return Object.assign(gateway, { address: `127.0.0.1:${gateway.port}` });
}
