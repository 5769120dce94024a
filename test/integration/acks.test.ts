// Acknowledgements of finished runs, against a real Redis: batched per worker id and
// partition, and nothing of a batch is remembered once Redis has it (the claim loop's orphans
// check reads what is still on its way; a copy kept forever once made every send slower).
// A batch may ride on the next claim: settled by it first, and sent again alone when the
// claim's request or reply is lost (through a relay that really loses it).
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import Redis from 'ioredis';
import { parseParams } from '../../shared/call/params';
import { decodeJob } from '../../shared/store/format/job';
import { Queues } from '../../shared/store/queues';
import { createRedis } from '../../shared/store/redis';
import { AckBatcher } from '../../worker/acks';
import { uniquePrefix } from '../helpers/redis';
import { suiteRedis } from '../helpers/store-calls';

const suite = suiteRedis();
let redis: Redis;
beforeAll(() => ({ redis } = suite));

test.each([1, 3])('finished runs are acknowledged in Redis and forgotten here (%i partition(s))', async (partitions) => {
  const queues = new Queues(redis, uniquePrefix('acks'), partitions);
  const call = parseParams('{"url":"/x","method":"POST","reply":false,"queue_detail":{"level":1,"limit_policy":"execute"}}', {
    maxParamsBytes: 1 << 20,
    maxBodyBytes: 1 << 20,
  });
  for (let i = 0; i < 300; i++) await queues.enqueue(call, { capacity: 1e9, discardThreshold: 1e9 });
  expect(await queues.register('w1', 60_000)).toBe(true);
  const lost: string[] = [];
  const acks = new AckBatcher(queues, (id) => lost.push(id));
  for (let p = 0; p < partitions; p++) {
    for (let round = 0; round < 10; round++) {
      const claimed = await queues.claim(p, 'w1', 30, 30, { weights: [3, 1], strict: false, capacity: 1e9 }, 60_000);
      if (claimed === 'lost') throw new Error('lease lost');
      for (const run of claimed.runs) acks.add('w1', run.partition, decodeJob(run.token, run.payload), 'done', 200);
      await acks.flush();
    }
  }
  const { total } = await queues.stats();
  expect(total.counters['L1:done']).toBe(300);
  expect(total.inFlight).toBe(0);
  for (let p = 0; p < partitions; p++) expect(acks.pendingTokens('w1', p)).toEqual([]);
  expect(lost).toEqual([]);
});

/**
 * A TCP relay in front of the suite's Redis that can lose one call: `request` drops the next
 * command before Redis sees it, `reply` lets Redis run it and drops its answer; either way the
 * connection is then cut, as a network fault would (the client reconnects).
 */
async function faultyRelay(upstreamPort: number): Promise<{ url: string; lose(what: 'request' | 'reply'): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let losing: 'request' | 'reply' | undefined;
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (data) => {
      if (losing === 'request') {
        losing = undefined;
        cut();
      } else upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (losing === 'reply') {
        losing = undefined;
        cut();
      } else client.write(data);
    });
    client.on('close', cut).on('error', cut);
    upstream.on('close', cut).on('error', cut);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    lose: (what) => (losing = what),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('settles riding on a claim', () => {
  const selection = { weights: [3, 1] as const, strict: false, capacity: 1e9 };
  const call = parseParams('{"url":"/x","method":"POST","reply":false,"queue_detail":{"level":1,"limit_policy":"execute"}}', {
    maxParamsBytes: 1 << 20,
    maxBodyBytes: 1 << 20,
  });

  test('a claim carries the acknowledgements of its id and partition, and settles them before it claims', async () => {
    const queues = new Queues(redis, uniquePrefix('ride'));
    for (let i = 0; i < 6; i++) await queues.enqueue(call, { capacity: 1e9, discardThreshold: 1e9 });
    expect(await queues.register('w1', 60_000)).toBe(true);
    const acks = new AckBatcher(queues, () => undefined);
    const first = await queues.claim(0, 'w1', 3, 3, selection, 60_000);
    if (first === 'lost') throw new Error('lease lost');
    for (const run of first.runs) acks.add('w1', 0, decodeJob(run.token, run.payload), 'done', 200);
    const settles = acks.take('w1', 0)!;
    expect(settles.acks).toHaveLength(3);
    expect(acks.take('w1', 0)).toBeUndefined();
    // Taken, not yet in Redis: still held, so the orphans check leaves them be.
    expect(acks.pendingTokens('w1', 0).sort()).toEqual(first.runs.map((r) => r.token).sort());
    const second = await queues.claim(0, 'w1', 3, 3, selection, 60_000, undefined, true, settles);
    if (second === 'lost') throw new Error('lease lost');
    acks.rode('w1', 0, settles, true);
    expect(second.acknowledged).toBe(3);
    expect(second.runs).toHaveLength(3);
    expect(acks.pendingTokens('w1', 0)).toEqual([]);
    const { total } = await queues.stats();
    expect(total.counters['L1:done']).toBe(3);
    expect(total.inFlight).toBe(3);
    // Sent again (a claim whose reply was lost, then a lone send): nothing is counted twice.
    expect(await queues.finish(0, 'w1', settles.acks)).toBe(0);
    expect((await queues.stats()).total.counters['L1:done']).toBe(3);
  });

  test('a claim refused for a lost lease settles nothing it carried', async () => {
    const queues = new Queues(redis, uniquePrefix('ride-lost'));
    for (let i = 0; i < 2; i++) await queues.enqueue(call, { capacity: 1e9, discardThreshold: 1e9 });
    expect(await queues.register('w1', 200)).toBe(true);
    const claimed = await queues.claim(0, 'w1', 2, 2, selection, 200);
    if (claimed === 'lost') throw new Error('lease lost');
    const acks = new AckBatcher(queues, () => undefined);
    for (const run of claimed.runs) acks.add('w1', 0, decodeJob(run.token, run.payload), 'done', 200);
    const settles = acks.take('w1', 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await queues.claim(0, 'w1', 2, 2, selection, 200, undefined, true, settles)).toBe('lost');
    const { total } = await queues.stats();
    expect(total.counters['L1:done'] ?? 0).toBe(0);
    // Recovery takes both runs back: no job is lost.
    expect(await queues.requeueWorker(0, 'w1', 'expired', 5, 100)).toBe(2);
    expect((await queues.stats()).total.queues['L1:execute']).toBe(2);
  });

  test.each(['request', 'reply'] as const)(
    'a claim whose %s is lost: its settles are sent again alone, neither lost nor counted twice, and its runs handed back',
    async (lost) => {
      const relay = await faultyRelay(suite.server.port);
      const conn = createRedis(relay.url, 'worker');
      try {
        await conn.connect();
        const prefix = uniquePrefix(`ride-${lost}`);
        const queues = new Queues(conn, prefix);
        for (let i = 0; i < 8; i++) await queues.enqueue(call, { capacity: 1e9, discardThreshold: 1e9 });
        expect(await queues.register('w1', 60_000)).toBe(true);
        const onLost: string[] = [];
        const acks = new AckBatcher(queues, (id) => onLost.push(id));
        const first = await queues.claim(0, 'w1', 4, 4, selection, 60_000);
        if (first === 'lost') throw new Error('lease lost');
        for (const run of first.runs) acks.add('w1', 0, decodeJob(run.token, run.payload), 'done', 200);
        const settles = acks.take('w1', 0)!;
        relay.lose(lost);
        await expect(queues.claim(0, 'w1', 4, 4, selection, 60_000, undefined, true, settles)).rejects.toThrow();
        acks.rode('w1', 0, settles, false);
        // Still held while they are sent again: the orphans check must not hand them back.
        expect(acks.pendingTokens('w1', 0).sort()).toEqual(first.runs.map((r) => r.token).sort());
        await acks.flush();
        expect(acks.pendingTokens('w1', 0)).toEqual([]);
        const direct = new Queues(redis, prefix);
        const { total } = await direct.stats();
        expect(total.counters['L1:done']).toBe(4);
        // A reply lost after the claim ran: its four runs are recorded for a worker that never got them.
        expect(total.inFlight).toBe(lost === 'reply' ? 4 : 0);
        expect(await direct.requeueWorker(0, 'w1', 'orphans', 5, 100, [])).toBe(lost === 'reply' ? 4 : 0);
        const rest = await queues.claim(0, 'w1', 8, 8, selection, 60_000);
        if (rest === 'lost') throw new Error('lease lost');
        expect(rest.runs).toHaveLength(4);
        await queues.finish(
          0,
          'w1',
          rest.runs.map((run) => ({ job: decodeJob(run.token, run.payload), outcome: 'done' as const, status: 200 })),
        );
        const after = (await direct.stats()).total;
        expect(after.counters['L1:done']).toBe(8);
        expect(after.inFlight).toBe(0);
        expect(after.queues['L1:execute']).toBe(0);
        expect(onLost).toEqual([]);
      } finally {
        conn.disconnect();
        await relay.close();
      }
    },
  );
});
