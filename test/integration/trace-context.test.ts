// The trace context stored with a job, on a real Redis, with a real SDK registered in-process:
// the PRODUCER span's context is in the payload (where redis-cli shows it), a `last` message
// that supersedes waiting ones carries their contexts as links (newest first, at most 8), and
// with no SDK nothing is stored.
import { node, tracing } from '@opentelemetry/sdk-node';
import { trace } from '@opentelemetry/api';
import { Queues } from '../../shared/store/queues';
import { decodeJob, MAX_LINKS } from '../../shared/store/format/job';
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
});
