// Fuzzing the operator's commands on real processes (issue 14): job, delete, dead requeue,
// queue, pause, resume and stats with hostile ids, levels and flags against a real deployment.
// Every run ends with exit code 0, 1 or 2, never a stack trace, one line on stderr when it
// refuses, and the queued jobs are still there afterwards.
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import Redis from 'ioredis';
import { parseParams } from '../../shared/call/params';
import { Store } from '../../shared/store/store';
import { BIN, ROOT } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';
import { expectCleanRedis, failureOf } from '../helpers/check-state';

const LIMITS = { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 };
let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  const problems = await failureOf(expectCleanRedis(server.url));
  await server.close();
  if (problems) throw problems;
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SWITCHYARD_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** An argument the operating system can carry: no NUL byte. */
const withoutNul = (s: string): string => s.split(String.fromCharCode(0)).join('');

const hostile = fc.oneof(
  fc.constantFrom('*', 'all', '', ' ', '%ZZ', '../../etc/passwd', '-1', '1e999', '--', '-', 'x'.repeat(5000), '{"id":"x"}', '"', '\\', '\n', '1\n2'),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map(withoutNul),
  fc.string({ unit: 'binary', maxLength: 20 }).map(withoutNul),
);

test('operator commands (check included) with hostile arguments: exit 0/1/2, no stack trace, one-line refusals, nothing queued is lost (40 runs)', async () => {
  const prefix = uniquePrefix('cli');
  const store = new Store(redis, prefix);
  const limits = { capacity: 1000, discardThreshold: 600 };
  for (let i = 0; i < 5; i++) {
    await store.enqueue(
      parseParams(JSON.stringify({ url: `/w${i}`, method: 'POST', reply: false, queue_detail: { level: 1, limit_policy: 'execute' } }), LIMITS),
      limits,
    );
  }
  await store.enqueue(
    parseParams(JSON.stringify({ url: '/k', method: 'PUT', reply: false, queue_detail: { level: 2, limit_policy: 'last', key: '*' } }), LIMITS),
    limits,
  );
  const before = { execute: await redis.llen(store.keys.queue(1, 'execute')), last: await redis.hlen(store.keys.queue(2, 'last')) };

  const command = fc.oneof(
    fc.tuple(fc.constantFrom('job', 'delete'), hostile).map(([c, id]) => [c, id]),
    hostile.map((id) => ['dead', 'requeue', id]),
    fc.tuple(fc.constantFrom('queue', 'pause', 'resume'), hostile).map(([c, level]) => [c, level]),
    fc.constantFrom(
      ['check'],
      ['check', '--json', '--repair'],
      ['check', '--recovery-grace', '-1'],
      ['check', '--recovery-grace', '1e999'],
      ['check', '--partitions', '0'],
    ),
    hostile.map((word) => ['check', '--prefix', word]),
    fc.constantFrom(['stats', '--json'], ['dead', 'list', '--limit', '-1'], ['dead', 'list', '--limit', '1e999'], ['queue', '1', '--limit', '0'], ['job']),
  );
  const samples = fc.sample(command, { numRuns: 40, seed: 14 });
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < samples.length; i += 4) {
    const results = await Promise.all(
      samples.slice(i, i + 4).map(async (args) => ({ args, result: await run([...args, '--redis', server.url, '--prefix', prefix]) })),
    );
    for (const { args, result } of results) {
      const what = `${JSON.stringify(args)} → ${result.code}: ${result.stderr}`;
      expect([0, 1, 2]).toContain(result.code);
      expect(result.stderr).not.toMatch(/^\s+at /m);
      if (result.code === 2) expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      outcomes[String(result.code)] = (outcomes[String(result.code)] ?? 0) + 1;
      if (result.code === null) throw new Error(`hung: ${what}`);
    }
  }
  // A pause that a hostile level managed to set would show here; none may: only 1 and 2 are levels.
  await redis.del(store.keys.paused);
  expect(await redis.llen(store.keys.queue(1, 'execute'))).toBe(before.execute);
  expect(await redis.hlen(store.keys.queue(2, 'last'))).toBe(before.last);
  expect(Object.values(outcomes).reduce((a, b) => a + b, 0)).toBe(40);
}, 180_000);
