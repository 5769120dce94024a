// Acknowledgements of finished runs, against a real Redis: batched per worker id and
// partition, and nothing of a batch is remembered once Redis has it (the claim loop's orphans
// check reads what is still on its way; a copy kept forever once made every send slower).
import Redis from 'ioredis';
import { parseParams } from '../../shared/call/params';
import { decodeJob } from '../../shared/store/format/job';
import { Queues } from '../../shared/store/queues';
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
