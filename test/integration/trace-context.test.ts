// The trace context stored with a job, on a real Redis, with a real SDK registered in-process:
// the PRODUCER span's context is in the payload (where redis-cli shows it), a `last` message
// that supersedes waiting ones carries their contexts as links (newest first, at most 8), and
// with no SDK nothing is stored.
import { node, tracing } from '@opentelemetry/sdk-node';
import { trace } from '@opentelemetry/api';
import { Queues } from '../../shared/store/queues';
import { decodeJob, MAX_LINKS, routeOf } from '../../shared/store/format/job';
import { expectCleanState } from '../helpers/check-state';
import { SpanKind } from '../../shared/trace';
import { uniquePrefix } from '../helpers/redis';
import { asyncCall, suiteRedis } from '../helpers/store-calls';

const ADMISSION = { capacity: 1000, discardThreshold: 600 };
const suite = suiteRedis();
const exporter = new tracing.InMemorySpanExporter();

test('without an SDK, a payload carries no context', async () => {
  const prefix = uniquePrefix('untraced');
  const queues = new Queues(suite.redis, prefix);
  await queues.enqueue(asyncCall('/a', 1, 'execute'), ADMISSION);
  const [payload] = await suite.redis.lrange(`{${prefix}}:L1:execute`, 0, -1);
  expect(payload).not.toContain('"trace"');
  expect(exporter.getFinishedSpans()).toEqual([]);
});

describe('with an SDK', () => {
  beforeAll(() => new node.NodeTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] }).register());

  test('the PRODUCER span names the job and its outcome, and its context is stored with the job', async () => {
    const prefix = uniquePrefix('traced');
    const queues = new Queues(suite.redis, prefix);
    const { id } = await queues.enqueue(asyncCall('/a', 2, 'discard'), ADMISSION);
    const [payload] = await suite.redis.lrange(`{${prefix}}:L2:discard`, 0, -1);
    const producer = exporter.getFinishedSpans().find((s) => s.attributes['messaging.message.id'] === id)!;
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(producer.name).toBe('send L2:discard');
    expect(producer.attributes).toMatchObject({ 'messaging.system': 'switchyard', 'messaging.destination.name': 'L2:discard', 'switchyard.outcome': 'queued' });
    expect(payload).toContain(`"trace":"00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01"`);
    expect(decodeJob(1, payload).trace?.traceparent).toBe(`00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01`);
  });

  test('a superseding `last` message links to the messages it replaced, newest first, at most 8', async () => {
    const prefix = uniquePrefix('links');
    const queues = new Queues(suite.redis, prefix);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }, { n: i }), ADMISSION)).id);
    const payload = (await suite.redis.hget(`{${prefix}}:L1:last`, 'k'))!;
    const job = decodeJob(1, payload);
    const contextOf = (id: string): string => {
      const span = exporter.getFinishedSpans().find((s) => s.attributes['messaging.message.id'] === id)!;
      return `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;
    };
    expect(job.id).toBe(ids[11]);
    expect(job.trace?.traceparent).toBe(contextOf(ids[11]));
    expect(job.links).toEqual(ids.slice(3, 11).reverse().map(contextOf));
    expect(job.links).toHaveLength(MAX_LINKS);
    expect(job.content).toEqual({ n: 11 });
  });

  const producerContext = (id: string): string => {
    const span = exporter.getFinishedSpans().find((s) => s.attributes['messaging.message.id'] === id)!;
    return `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;
  };

  test('a delayed `last` message that supersedes a waiting one links to it, also once it is promoted', async () => {
    const prefix = uniquePrefix('links-delayed');
    const queues = new Queues(suite.redis, prefix);
    const first = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }), ADMISSION);
    const delayed = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k', delay: 0.05 }), ADMISSION);
    expect(delayed.outcome).toBe('replaced');
    const [held] = await suite.redis.zrange(`{${prefix}}:delayed`, 0, -1);
    expect(decodeJob(1, held).links).toEqual([producerContext(first.id)]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await queues.promoteDue(0, 1000);
    const promoted = decodeJob(1, (await suite.redis.hget(`{${prefix}}:L1:last`, 'k'))!);
    expect(promoted.id).toBe(delayed.id);
    expect(promoted.links).toEqual([producerContext(first.id)]);
  });

  test('a `last` message that supersedes a delayed one links to it (and to what that one carried)', async () => {
    const prefix = uniquePrefix('links-over-delayed');
    const queues = new Queues(suite.redis, prefix);
    const first = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }), ADMISSION);
    const delayed = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k', delay: 3600 }), ADMISSION);
    const newest = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }), ADMISSION);
    const job = decodeJob(1, (await suite.redis.hget(`{${prefix}}:L1:last`, 'k'))!);
    expect(job.id).toBe(newest.id);
    expect(job.links).toEqual([producerContext(delayed.id), producerContext(first.id)]);
  });

  test('gateways with and without an SDK on one queue: a traced message superseding an untraced one, and the reverse', async () => {
    const prefix = uniquePrefix('links-mixed');
    const queues = new Queues(suite.redis, prefix);
    const provider = trace.getTracerProvider();
    trace.disable(); // a gateway without an SDK
    const untraced = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }), ADMISSION);
    expect(await suite.redis.hget(`{${prefix}}:L1:last`, 'k')).not.toContain('"trace"');
    trace.setGlobalTracerProvider(provider);
    const traced = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }), ADMISSION);
    expect(traced.outcome).toBe('replaced');
    const job = decodeJob(1, (await suite.redis.hget(`{${prefix}}:L1:last`, 'k'))!);
    expect(job.trace?.traceparent).toBe(producerContext(traced.id));
    expect(job.links).toBeUndefined();
    expect(untraced.id).not.toBe(traced.id);
    // The reverse: a gateway without an SDK stores nothing, links included (no memory for traces there).
    trace.disable();
    const plain = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }, { n: 3 }), ADMISSION);
    trace.setGlobalTracerProvider(provider);
    const payload = (await suite.redis.hget(`{${prefix}}:L1:last`, 'k'))!;
    expect(payload).not.toContain('"trace"');
    expect(payload).not.toContain('"links"');
    expect(decodeJob(1, payload)).toMatchObject({ id: plain.id, content: { n: 3 } });
  });

  test('a payload with a context and links stays whole through a retry, the dead list and its requeue, and a recovery', async () => {
    const prefix = uniquePrefix('links-life');
    const queues = new Queues(suite.redis, prefix);
    const selection = { weights: [3, 1] as const, strict: false, capacity: 1e9 };
    await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }), ADMISSION);
    const { id } = await queues.enqueue(asyncCall('/k', 1, 'last', { key: 'k' }, { n: 1 }), ADMISSION);
    const stored = decodeJob(1, (await suite.redis.hget(`{${prefix}}:L1:last`, 'k'))!);
    expect(stored.links).toHaveLength(1);
    const same = (payload: string, attempt: number): void => {
      const job = decodeJob(1, payload);
      expect(job).toMatchObject({ id, attempt, key: 'k', content: { n: 1 }, trace: stored.trace, links: stored.links });
      expect(routeOf(payload)).toMatchObject({ id, attempt, key: 'k', policy: 'last' });
    };
    const claimOne = async (leaseMs = 60_000): Promise<{ token: number; payload: string }> => {
      await queues.promoteDue(0, 1000);
      const claimed = await queues.claim(0, 'w1', 1, 1, selection, leaseMs);
      if (claimed === 'lost' || claimed.runs.length !== 1) throw new Error(`nothing claimed: ${JSON.stringify(claimed)}`);
      return claimed.runs[0];
    };
    expect(await queues.register('w1', 60_000)).toBe(true);
    let run = await claimOne();
    same(run.payload, 1);
    expect(await queues.fail(0, 'w1', run.token, { retryDelayMs: 0 }, 100)).toBe('retry');
    run = await claimOne();
    same(run.payload, 2);
    expect(await queues.fail(0, 'w1', run.token, { status: 500, error: 'boom' }, 100)).toBe('dead');
    expect(await queues.requeueDead(id)).toBe('requeued');
    run = await claimOne(1);
    same(run.payload, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The worker dies: its runs come back (recovery), the payload still whole.
    expect(await queues.requeueWorker(0, 'w1', 'expired', 5, 100)).toBe(1);
    expect(await queues.register('w1', 60_000)).toBe(true);
    run = await claimOne();
    same(run.payload, 2);
    expect(await queues.finish(0, 'w1', [{ job: decodeJob(run.token, run.payload), outcome: 'done', status: 200 }])).toBe(1);
    await expectCleanState(suite.server.url, prefix);
  });
});
