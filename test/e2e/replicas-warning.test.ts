// A gateway started with --replicas-ack on a Redis without enough replicas says so at start,
// once, instead of only answering every async call 503 (it did so silently before).
import path from 'node:path';
import { expectCleanRedis, failureOf } from '../helpers/check-state';
import { killAll, logLines, startSwitchyard, waitFor } from '../helpers/processes';
import { startRedis, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await killAll();
  const problems = await failureOf(expectCleanRedis(redis.url));
  await redis.close();
  if (problems) throw problems;
});

test('--replicas-ack 1 on a master without a replica: one warning at start naming the master; --replicas-ack 0: none', async () => {
  const warned = await startSwitchyard('gateway', ['--app', APP, '--redis', redis.url, '--prefix', 'replicas', '--port', '0', '--replicas-ack', '1']);
  const warnings = (): Array<Record<string, unknown>> => logLines(warned.output()).filter((line) => line.event === 'replicas_missing');
  expect(await waitFor(() => warnings().length > 0, 10_000)).toBe(true);
  expect(warnings()).toEqual([expect.objectContaining({ needed: 1, connected: 0, master: expect.stringContaining(String(new URL(redis.url).port)) })]);
  const quiet = await startSwitchyard('gateway', ['--app', APP, '--redis', redis.url, '--prefix', 'replicas', '--port', '0']);
  await new Promise((r) => setTimeout(r, 500));
  expect(logLines(quiet.output()).filter((line) => line.event === 'replicas_missing')).toEqual([]);
});
