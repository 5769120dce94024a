// A gateway and a worker whose Redis stops: what they log says it in our terms ("Redis
// connection not ready"), never ioredis' internals ("Stream isn't writeable and
// enableOfflineQueue options is false").
import path from 'node:path';
import { closeClients, send } from '../../client';
import { killAll, logLines, startSwitchyard, waitFor } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
const IOREDIS = /enableOfflineQueue|Stream isn't writeable|Connection is closed\.|maxRetriesPerRequest|Cluster isn't ready/;

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  closeClients();
  await killAll();
  await redis?.close();
});

test("with Redis stopped, the gateway's and the worker's log lines say so in our words", async () => {
  const prefix = uniquePrefix('words');
  const env = { RECORD_URL: redis.url, RECORD_KEY: `${prefix}:runs` };
  const flags = ['--app', APP, '--redis', redis.url, '--prefix', prefix];
  const gateway = await startSwitchyard('gateway', [...flags, '--port', '0', '--host', '127.0.0.1'], env);
  const worker = await startSwitchyard('worker', flags, env);
  const address = `127.0.0.1:${gateway.ready.port}`;
  expect((await send('/record', { address, level: 1 })).status).toBe(201);
  await redis.stop();
  // Async calls while it is away: each waits for the connection within its deadline, then 503.
  for (let i = 0; i < 3; i++) expect((await send('/record', { address, level: 1, deadline: 1 })).status).toBe(503);
  const quoting = (output: string): Array<Record<string, unknown>> => logLines(output).filter((l) => ['warn', 'error', 'fatal'].includes(String(l.level)));
  expect(await waitFor(async () => quoting(worker.output()).some((l) => l.event === 'worker_paused'), 10_000)).toBe(true);
  expect(await waitFor(async () => quoting(gateway.output()).some((l) => l.event === 'enqueue_failed'), 10_000)).toBe(true);
  const lines = [...quoting(gateway.output()), ...quoting(worker.output())];
  process.stdout.write(`[redis-words] ${lines.map((l) => `${String(l.event)}: ${String(l.msg)}`).join(' | ')}\n`);
  expect(lines.filter((l) => IOREDIS.test(JSON.stringify(l)))).toEqual([]);
  // And what they say instead names the connection.
  expect(lines.some((l) => /Redis connection (not ready|closed)|connect ECONNREFUSED/.test(String(l.msg)))).toBe(true);
}, 60_000);
