// Hostile trace context, sent as raw gRPC metadata (node:http2 frames, so nothing is cleaned on
// the client's side) to a real traced gateway process: huge, malformed and repeated
// `traceparent`/`tracestate` values, quotes, backslashes, `,"method":"` and `"]` in the state,
// latin1 bytes, version ff, all-zero ids, uppercase hex. Every call is answered, the gateway stays
// up, no caller's text lands in the stored payload outside its JSON strings, every payload stays
// readable by the scripts' readers (routeOf, the links carried over by a superseding `last`
// message, the checker) and by the worker's decoding, and a worker without an SDK runs them all.
import http2 from 'node:http2';
import path from 'node:path';
import Redis from 'ioredis';
import { decodeStringField1, encodeStringField1 } from '../../shared/call/wire';
import { decodeJob, MAX_LINKS, routeOf } from '../../shared/store/format/job';
import { expectCleanState } from '../helpers/check-state';
import { KIND, otlpEnv, startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { killAll, startSwitchyard, waitFor, type SwitchyardProcess } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

jest.setTimeout(120_000);

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;
const STORED_CONTEXT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
/** The fields a gateway may write, in a payload still waiting (no "attempt" yet). */
const FIELDS = new Set([
  'id',
  'at',
  'level',
  'policy',
  'key',
  'ttl',
  'timeout',
  'attempts',
  'backoff',
  'trace',
  'tracestate',
  'links',
  'method',
  'url',
  'headers',
  'content',
]);

type Metadata = Record<string, string | string[]>;

/** The hostile metadata sets, each sent with one async call. */
const HOSTILE: Array<[string, Metadata]> = [
  ['quotes, backslashes, `,"method":"` and `"]` in the state', { traceparent: VALID, tracestate: 'a=x"y\\z,b=",c="],d=q","method":"evil,e=1\\",f=]}' }],
  ['a state member that tries to add fields', { traceparent: VALID, tracestate: 'g=","injected":true,"method":"GET' }],
  ['40 state members', { traceparent: VALID, tracestate: Array.from({ length: 40 }, (_, i) => `k${i}=v${i}`).join(',') }],
  ['a state of 16 KB', { traceparent: VALID, tracestate: `big=${'x'.repeat(16 * 1024)}` }],
  ['a traceparent of 16 KB (a future version may append fields)', { traceparent: `01-${TRACE_ID}-${SPAN_ID}-01-${'"\\'.repeat(8 * 1024)}` }],
  ['a traceparent with quotes', { traceparent: `00-${TRACE_ID}-${SPAN_ID}-01","method":"GET` }],
  ['version ff', { traceparent: `ff-${TRACE_ID}-${SPAN_ID}-01`, tracestate: 'a=1' }],
  ['all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-${SPAN_ID}-01` }],
  ['all-zero span id', { traceparent: `00-${TRACE_ID}-${'0'.repeat(16)}-01` }],
  ['uppercase hex', { traceparent: `00-${TRACE_ID.toUpperCase()}-${SPAN_ID.toUpperCase()}-01` }],
  ['latin1 bytes', { traceparent: VALID, tracestate: 'u=caf\u00e9,v=\u00ff\u00fe' }],
  ['two traceparent headers', { traceparent: [VALID, `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`] }],
  ['two tracestate headers', { traceparent: VALID, tracestate: ['a=1', 'b="]'] }],
  ['an empty traceparent', { traceparent: '', tracestate: 'a=1' }],
  ['a state without a traceparent', { tracestate: 'a=","method":"GET' }],
];

/** One unary call over raw HTTP/2, the metadata exactly as given. */
function rawCall(session: http2.ClientHttp2Session, params: object, metadata: Metadata): Promise<{ status: number; data: { id?: string } }> {
  return new Promise((resolve, reject) => {
    const message = encodeStringField1(JSON.stringify(params));
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/rpc.RPCServer/handel',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...metadata,
    });
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      if (body.length < 5) return reject(new Error('no message in the answer'));
      const content = JSON.parse(decodeStringField1(body.subarray(5))) as { status_code: string; data: { id?: string } };
      resolve({ status: Number(content.status_code), data: content.data });
    });
    stream.end(Buffer.concat([prefix, message]));
  });
}

/** The payload's fields in their stored order, and the checks every reader of a payload relies on. */
function expectReadable(payload: string): void {
  const raw = JSON.parse(payload) as Record<string, unknown>;
  for (const field of Object.keys(raw)) expect(FIELDS).toContain(field);
  expect(routeOf(payload)).not.toBeNull();
  const job = decodeJob(1, payload);
  expect(job.method).toBe('POST');
  expect(job.url).toBe('/record');
  if (raw.trace !== undefined) expect(raw.trace).toMatch(STORED_CONTEXT);
  if (raw.tracestate !== undefined) expect(typeof raw.tracestate).toBe('string');
  if (raw.links !== undefined) {
    expect((raw.links as string[]).length).toBeLessThanOrEqual(MAX_LINKS);
    for (const link of raw.links as string[]) expect(link).toMatch(STORED_CONTEXT);
  }
  // The scripts read the method and url after the first `,"method":"` (finishRuns, carryLinks).
  expect(payload.indexOf(',"method":"')).toBe(payload.indexOf(',"method":"POST","url":"/record"'));
}

describe('hostile trace context through a traced gateway', () => {
  let receiver: OtlpReceiver;
  let redis: TestRedis;
  let client: Redis;
  let gateway: SwitchyardProcess;
  let session: http2.ClientHttp2Session;
  const prefix = uniquePrefix('trace-hostile');
  const recordKey = `${prefix}:runs`;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    redis = await startRedis();
    client = new Redis(redis.url);
    gateway = await startSwitchyard(
      'gateway',
      ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--port', '0', '--host', '127.0.0.1'],
      otlpEnv(receiver, 'gateway'),
    );
    session = http2.connect(`http://127.0.0.1:${gateway.ready.port}`);
  });
  afterAll(async () => {
    session?.close();
    client?.disconnect();
    await killAll();
    await redis?.stop();
    await receiver?.close();
  });

  test('every call is answered, every payload stays readable, and a worker without an SDK runs them all', async () => {
    const ids: string[] = [];
    for (const [what, metadata] of HOSTILE) {
      // An execute job and a `last` one per set: the `last` ones supersede each other, so the
      // links carried over are read from payloads stored under every hostile set.
      for (const detail of [
        { level: 1, limit_policy: 'execute' },
        { level: 1, limit_policy: 'last', key: 'k' },
      ]) {
        const reply = await rawCall(session, { method: 'POST', url: '/record', reply: false, content: { what }, queue_detail: detail }, metadata);
        expect([what, reply.status]).toEqual([what, reply.status === 200 ? 200 : 201]);
        ids.push(reply.data.id!);
      }
    }
    // The gateway is still up and still answers.
    expect(gateway.child.exitCode).toBeNull();

    const payloads = [...(await client.lrange(`{${prefix}}:L1:execute`, 0, -1)), ...Object.values(await client.hgetall(`{${prefix}}:L1:last`))];
    expect(payloads).toHaveLength(HOSTILE.length + 1);
    for (const payload of payloads) expectReadable(payload);
    const last = decodeJob(1, (await client.hget(`{${prefix}}:L1:last`, 'k'))!);
    expect(last.links).toHaveLength(MAX_LINKS);

    // A valid traceparent is continued whatever the state beside it; an invalid one starts a new trace.
    const servers = await receiver.waitFor((all) => all.filter((s) => s.kind === KIND.SERVER).length >= HOSTILE.length * 2);
    const continued = new Set(servers.filter((s) => s.kind === KIND.SERVER && s.parentSpanId === SPAN_ID).map((s) => s.traceId));
    expect([...continued]).toEqual([TRACE_ID]);
    expect(servers.filter((s) => s.kind === KIND.SERVER && s.traceId === TRACE_ID).length).toBe(
      2 * HOSTILE.filter(([, m]) => m.traceparent === VALID || (typeof m.traceparent === 'string' && m.traceparent.startsWith('01-'))).length,
    );

    // A worker with no SDK (no OTEL_* variables) runs every payload the traced gateway wrote.
    const noOtel = Object.fromEntries(
      Object.keys(process.env)
        .filter((k) => k.startsWith('OTEL_'))
        .map((k) => [k, undefined]),
    );
    await startSwitchyard('worker', ['--app', APP, '--redis', redis.url, '--prefix', prefix], { ...noOtel, RECORD_URL: redis.url, RECORD_KEY: recordKey });
    expect(await waitFor(async () => (await client.llen(recordKey)) >= HOSTILE.length + 1, 60_000)).toBe(true);
    const runs = (await client.lrange(recordKey, 0, -1)).map((line) => JSON.parse(line) as { id: string; body: { what: string } });
    expect(runs.map((r) => r.id).sort()).toEqual([...ids.filter((_, i) => i % 2 === 0), ids[ids.length - 1]].sort());
    await killAll();
    await expectCleanState(redis.url, prefix);
  });
});

// A deployment whose tracing speaks another format (OTEL_PROPAGATORS=b3, as Zipkin shops set it):
// the gateway continues the caller's `b3` header, and the context stored with the job is still
// the W3C one the payload's format names, so the worker links the run to the call.
describe('a propagator other than W3C trace context', () => {
  let receiver: OtlpReceiver;
  let redis: TestRedis;
  let client: Redis;
  let session: http2.ClientHttp2Session;
  const prefix = uniquePrefix('trace-b3');
  const recordKey = `${prefix}:runs`;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    redis = await startRedis();
    client = new Redis(redis.url);
    const gateway = await startSwitchyard('gateway', ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--port', '0', '--host', '127.0.0.1'], {
      ...otlpEnv(receiver, 'gateway'),
      OTEL_PROPAGATORS: 'b3',
    });
    session = http2.connect(`http://127.0.0.1:${gateway.ready.port}`);
  });
  afterAll(async () => {
    session?.close();
    client?.disconnect();
    await killAll();
    await redis?.stop();
    await receiver?.close();
  });

  test('the caller’s b3 context is continued, the job stores its context, and its run links to it', async () => {
    const b3 = `${TRACE_ID}-${SPAN_ID}-1`;
    const reply = await rawCall(session, { method: 'POST', url: '/record', reply: false, queue_detail: { level: 1, limit_policy: 'execute' } }, { b3 });
    expect(reply.status).toBe(201);
    const id = reply.data.id!;
    const [payload] = await client.lrange(`{${prefix}}:L1:execute`, 0, -1);
    expectReadable(payload);
    const spans = await receiver.waitFor((all) => all.some((s) => s.kind === KIND.PRODUCER && s.attributes['messaging.message.id'] === id));
    const server = spans.find((s) => s.kind === KIND.SERVER)!;
    expect(server).toMatchObject({ traceId: TRACE_ID, parentSpanId: SPAN_ID });
    const producer = spans.find((s) => s.kind === KIND.PRODUCER && s.attributes['messaging.message.id'] === id)!;
    expect(decodeJob(1, payload).trace).toEqual({ traceparent: `00-${TRACE_ID}-${producer.spanId}-01` });

    await startSwitchyard('worker', ['--app', APP, '--redis', redis.url, '--prefix', prefix], {
      ...otlpEnv(receiver, 'worker'),
      OTEL_PROPAGATORS: 'b3',
      RECORD_URL: redis.url,
      RECORD_KEY: recordKey,
    });
    const all = await receiver.waitFor((got) => got.some((s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === id));
    const consumer = all.find((s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === id)!;
    expect(consumer.links).toEqual([expect.objectContaining({ traceId: TRACE_ID, spanId: producer.spanId })]);
    await killAll();
    await expectCleanState(redis.url, prefix);
  });
});
