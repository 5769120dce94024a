// Redis loses its last writes under traffic (a restart from an older snapshot, standing in for
// a failover to a lagging replica): fences never go back, the workers carry on by themselves,
// and everything accepted after the restart runs. Real gateway, real workers, real redis-server;
// runs are recorded in a second Redis that nothing restarts.
import path from 'node:path';
import Redis from 'ioredis';
import { closeClients, send } from '../../client';
import { keysFor } from '../../shared/store/keys';
import { inProcessGateway, killAll, sleep, startSwitchyard, waitFor } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';
import { expectCleanRedis, failureOf } from '../helpers/check-state';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');

interface Run {
  id: string;
  key: string | null;
  fence: number;
  pid: number;
  start: number;
  end: number;
}

let queueRedis: TestRedis;
let recordRedis: TestRedis;
let queue: Redis;
let records: Redis;

beforeAll(async () => {
  [queueRedis, recordRedis] = await Promise.all([startRedis(), startRedis()]);
  queue = new Redis(queueRedis.url, { maxRetriesPerRequest: 1 });
  queue.on('error', () => undefined);
  records = new Redis(recordRedis.url);
});
afterAll(async () => {
  closeClients();
  await killAll();
  const problems = await failureOf(expectCleanRedis(queueRedis.url));
  queue.disconnect();
  records.disconnect();
  await Promise.all([queueRedis.close(), recordRedis.close()]);
  if (problems) throw problems;
});

test('a restart from an older snapshot under traffic: every run started after it has a larger fence than any before; workers carry on; what is accepted after it runs', async () => {
  const prefix = uniquePrefix('restart');
  const recordKey = `${prefix}:runs`;
  const gateway = await inProcessGateway(APP, queueRedis.url, prefix);
  try {
    for (let i = 0; i < 2; i++) {
      await startSwitchyard('worker', ['--app', APP, '--redis', queueRedis.url, '--prefix', prefix, '--lease', '2s', '--concurrency', '8'], {
        RECORD_URL: recordRedis.url,
        RECORD_KEY: recordKey,
      });
    }
    let version = 0;
    const sendSome = async (n: number): Promise<string[]> => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const answer = await send('/record', { address: gateway.address, level: 1, policy: 'last', key: `k${i % 10}`, content: { v: ++version, sleep: 20 } });
        if (answer.status === 201) ids.push((answer.data as { id: string }).id);
      }
      return ids;
    };
    const runs = async (): Promise<Run[]> => (await records.lrange(recordKey, 0, -1)).map((r) => JSON.parse(r) as Run);

    await sendSome(60);
    expect(await waitFor(async () => (await queue.hlen(keysFor(prefix).running)) === 0 && (await runs()).length >= 10, 15_000)).toBe(true);
    await queue.save(); // the snapshot the restart will load
    await sendSome(60); // accepted, run, then lost with Redis's last writes
    expect(await waitFor(async () => (await queue.llen(keysFor(prefix).order(1))) === 0, 15_000)).toBe(true);
    await sleep(200);
    const beforeRestart = await runs();
    const highest = Math.max(...beforeRestart.map((r) => r.fence));
    const restartedAt = Date.now();
    await queueRedis.restart();

    // Workers find their leases gone or stale and carry on; the gateway reconnects by itself.
    let after: string[] = [];
    expect(
      await waitFor(async () => {
        after = await sendSome(1);
        return after.length === 1;
      }, 15_000),
    ).toBe(true);
    after = after.concat(await sendSome(40));
    // Every message accepted after the restart ends: done, or replaced by a newer one of its key
    // that ran (the newest of each key runs).
    expect(await waitFor(async () => (await queue.hlen(keysFor(prefix).running)) === 0 && (await queue.llen(keysFor(prefix).order(1))) === 0, 20_000)).toBe(
      true,
    );
    const all = await runs();
    const startedAfter = all.filter((r) => r.start > restartedAt);
    expect(startedAfter.length).toBeGreaterThan(0);
    const behind = startedAfter.filter((r) => r.fence <= highest);
    expect(behind.map((r) => `${r.id} fence ${r.fence} <= ${highest}`)).toEqual([]);
    // The last message of each key sent after the restart (the last ten sent) ran.
    const ranIds = new Set(all.map((r) => r.id));
    expect(after.slice(-10).filter((id) => !ranIds.has(id))).toEqual([]);
    process.stdout.write(
      `[restart] ${beforeRestart.length} runs before the restart (highest fence ${highest}); ${startedAfter.length} after it, lowest fence ${Math.min(...startedAfter.map((r) => r.fence))}\n`,
    );
  } finally {
    await gateway.stop();
  }
}, 90_000);
