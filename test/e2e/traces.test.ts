// One trace from a caller to the job's handler, as a tracing backend receives it: a Python grpcio
// client sends a traceparent; a real gateway and real worker processes export OTLP/JSON to a
// receiver of the test's own. The SERVER span continues the caller, the PRODUCER span is its
// child, the job's CONSUMER span is a new trace linked to it (or its child with --otel-parent),
// and the routes' own spans are children of Switchyard's.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { KIND, otlpEnv, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver';
import { BIN, killAll, startSwitchyard, type SwitchyardProcess } from '../helpers/processes';
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis';

const PYTHON = '/usr/bin/python3';
const pythonHasGrpc = spawnSync(PYTHON, ['-c', 'import grpc']).status === 0;
const APP = path.join(__dirname, '..', 'fixtures', 'traced-app.js');
const CLIENT = path.join(__dirname, '..', 'fixtures', 'python_client.py');

jest.setTimeout(60_000);

function newCaller(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

async function callFromPython(address: string, traceparent: string, ...params: object[]): Promise<Array<{ status: number; data: { id?: string } }>> {
  const { stdout } = await promisify(execFile)(PYTHON, [CLIENT, address, ...params.map((p) => JSON.stringify(p))], {
    env: { ...process.env, SY_METADATA: JSON.stringify([['traceparent', traceparent]]) },
  });
  return stdout
    .trim()
    .split('\n')
    .map((line) => {
      const content = JSON.parse(line) as { status_code: string; data: { id?: string } };
      return { status: Number(content.status_code), data: content.data };
    });
}

const one = (spans: ReceivedSpan[], test: (s: ReceivedSpan) => boolean): ReceivedSpan | undefined => spans.find(test);

(pythonHasGrpc || process.env.CI ? describe : describe.skip)('one trace from the caller to the handler', () => {
  let receiver: OtlpReceiver;
  let redis: TestRedis;
  let gateway: SwitchyardProcess;
  let address: string;
  const prefix = uniquePrefix('traces');

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    redis = await startRedis();
    gateway = await startSwitchyard(
      'gateway',
      ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--port', '0', '--host', '127.0.0.1'],
      otlpEnv(receiver, 'gateway'),
    );
    address = `127.0.0.1:${gateway.ready.port}`;
  });
  afterAll(async () => {
    await killAll();
    await redis?.stop();
    await receiver?.close();
  });

  test('sync: the SERVER span continues the caller, is named after the route, and parents the route’s spans', async () => {
    const caller = newCaller();
    const [reply] = await callFromPython(address, caller.traceparent, { method: 'GET', url: '/users/42?full=1', reply: true });
    expect(reply.status).toBe(200);
    const spans = await receiver.waitFor((all) => all.some((s) => s.traceId === caller.traceId && s.name === 'db.query'));
    const server = one(spans, (s) => s.traceId === caller.traceId && s.kind === KIND.SERVER)!;
    expect(server).toMatchObject({ service: 'gateway', name: 'GET /users/:id', parentSpanId: caller.spanId });
    expect(server.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'rpc.RPCServer',
      'rpc.method': 'handel',
      'rpc.grpc.status_code': 0,
      'http.request.method': 'GET',
      'http.route': '/users/:id',
      'http.response.status_code': 200,
    });
    const query = one(spans, (s) => s.traceId === caller.traceId && s.name === 'db.query')!;
    expect(query.parentSpanId).toBe(server.spanId);
  });

  describe('async', () => {
    let worker: SwitchyardProcess;
    beforeAll(async () => {
      worker = await startSwitchyard('worker', ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--backoff', '50ms'], otlpEnv(receiver, 'worker'));
    });
    afterAll(() => worker?.kill('SIGKILL'));

    test('the PRODUCER span is the SERVER span’s child; the job’s CONSUMER span is a new trace linked to it', async () => {
      const caller = newCaller();
      const [reply] = await callFromPython(address, caller.traceparent, {
        method: 'POST',
        url: '/jobs/7',
        reply: false,
        content: { n: 1 },
        queue_detail: { level: 1, limit_policy: 'execute' },
      });
      expect(reply.status).toBe(201);
      const id = reply.data.id!;
      const spans = await receiver.waitFor((all) =>
        all.some((s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === id && s.service === 'worker'),
      );
      const server = one(spans, (s) => s.traceId === caller.traceId && s.kind === KIND.SERVER)!;
      expect(server).toMatchObject({ name: 'POST /jobs/:id', parentSpanId: caller.spanId });
      const producer = one(spans, (s) => s.traceId === caller.traceId && s.kind === KIND.PRODUCER)!;
      expect(producer).toMatchObject({ service: 'gateway', name: 'send L1:execute', parentSpanId: server.spanId });
      expect(producer.attributes).toMatchObject({
        'messaging.system': 'switchyard',
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'L1:execute',
        'messaging.message.id': id,
        'switchyard.outcome': 'queued',
      });
      const consumer = one(spans, (s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === id)!;
      expect(consumer.name).toBe('process L1:execute');
      expect(consumer.traceId).not.toBe(caller.traceId);
      expect(consumer.links).toEqual([expect.objectContaining({ traceId: caller.traceId, spanId: producer.spanId })]);
      expect(consumer.attributes).toMatchObject({
        'messaging.system': 'switchyard',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'L1:execute',
        'switchyard.attempt': 1,
      });
      expect(typeof consumer.attributes['switchyard.fence']).toBe('number');
      expect(consumer.attributes['switchyard.waited_ms']).toBeGreaterThanOrEqual(0);
      await receiver.waitFor((all) => all.some((s) => s.name === 'db.query' && s.parentSpanId === consumer.spanId));
    });

    test('a coalesced `last` run links to the calls it superseded, newest first', async () => {
      const cli = (...args: string[]): Promise<unknown> => promisify(execFile)(process.execPath, [BIN, ...args, '--redis', redis.url, '--prefix', prefix]);
      await cli('pause', '1');
      try {
        const caller = newCaller();
        const call = { method: 'POST', url: '/slow/coal', reply: false, queue_detail: { level: 1, limit_policy: 'last', key: 'coal' } };
        const replies = await callFromPython(address, caller.traceparent, call, call, call);
        expect(replies.map((r) => r.status)).toEqual([201, 201, 201]);
        expect(replies.map((r) => (r.data as { state?: string }).state)).toEqual(['queued', 'replaced', 'replaced']);
        const producers = await receiver.waitFor((all) => all.filter((s) => s.traceId === caller.traceId && s.kind === KIND.PRODUCER).length === 3);
        const sent = replies.map((r) => producers.find((s) => s.kind === KIND.PRODUCER && s.attributes['messaging.message.id'] === r.data.id)!);
        await cli('resume', '1');
        const spans = await receiver.waitFor((all) => all.some((s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === replies[2].data.id));
        const run = one(spans, (s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === replies[2].data.id)!;
        expect(run.links.map((l) => [l.spanId, l.attributes['switchyard.link']])).toEqual([
          [sent[2].spanId, undefined],
          [sent[1].spanId, 'superseded'],
          [sent[0].spanId, 'superseded'],
        ]);
        // The superseded messages never ran.
        expect(
          spans.filter((s) => s.kind === KIND.CONSUMER && [replies[0].data.id, replies[1].data.id].includes(String(s.attributes['messaging.message.id']))),
        ).toEqual([]);
      } finally {
        await cli('resume', '1');
      }
    });

    test('a retried job has one CONSUMER span per attempt, the failure recorded as an event', async () => {
      const caller = newCaller();
      const [reply] = await callFromPython(address, caller.traceparent, {
        method: 'POST',
        url: '/flaky',
        reply: false,
        queue_detail: { level: 1, limit_policy: 'execute' },
      });
      const id = reply.data.id!;
      const spans = await receiver.waitFor((all) => all.filter((s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === id).length >= 2);
      const runs = spans
        .filter((s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === id)
        .sort((a, b) => Number(a.attributes['switchyard.attempt']) - Number(b.attributes['switchyard.attempt']));
      expect(runs.map((s) => s.attributes['switchyard.attempt'])).toEqual([1, 2]);
      expect(runs[0].status.code).toBe(2); // ERROR
      expect(runs[0].events.map((e) => e.name)).toContain('retry');
      expect(runs[1].status.code).not.toBe(2);
      for (const run of runs) expect(run.links[0]).toMatchObject({ traceId: caller.traceId });
    });
  });

  test('no background loop runs inside a job’s context: no Redis command of the worker is parented to a run', async () => {
    const loopPrefix = uniquePrefix('traces-loops');
    const preload = path.join(__dirname, '..', 'fixtures', 'otel-preload.js');
    const gw = await startSwitchyard(
      'gateway',
      ['--app', APP, '--redis', redis.url, '--prefix', loopPrefix, '--port', '0', '--host', '127.0.0.1'],
      otlpEnv(receiver, 'gateway'),
    );
    // Short leases: renewals, recovery and promotion passes happen many times during the test.
    const wk = await startSwitchyard('worker', ['--app', APP, '--redis', redis.url, '--prefix', loopPrefix, '--lease', '1s', '--backoff', '50ms'], {
      ...otlpEnv(receiver, 'looping-worker'),
      NODE_OPTIONS: `--require ${preload}`,
    });
    try {
      const caller = newCaller();
      const calls = [
        ...Array.from({ length: 10 }, (_, i) => ({ method: 'POST', url: `/jobs/${i}`, reply: false, queue_detail: { level: 1, limit_policy: 'execute' } })),
        { method: 'POST', url: '/flaky', reply: false, queue_detail: { level: 1, limit_policy: 'execute' } },
        { method: 'POST', url: '/slow/k', reply: false, content: { ms: 1500 }, queue_detail: { level: 1, limit_policy: 'last', key: 'k' } },
      ];
      const replies = await callFromPython(`127.0.0.1:${gw.ready.port}`, caller.traceparent, ...calls);
      const ids = new Set(replies.map((r) => r.data.id));
      const runs = (all: ReceivedSpan[]): ReceivedSpan[] =>
        all.filter((s) => s.service === 'looping-worker' && s.kind === KIND.CONSUMER && ids.has(String(s.attributes['messaging.message.id'])));
      await receiver.waitFor((all) => runs(all).length >= 13);
      // Let the loops go on after the runs: renewals (every third of a second), claims, pruning.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const spans = receiver.spans.filter((s) => s.service === 'looping-worker');
      const redisSpans = spans.filter((s) => s.attributes['db.system'] === 'redis' || s.attributes['db.system.name'] === 'redis');
      expect(redisSpans.length).toBeGreaterThan(20); // the instrumentation sees the worker's commands
      const runIds = new Set(runs(spans).map((s) => s.spanId));
      const inARun = redisSpans.filter((s) => runIds.has(s.parentSpanId));
      expect(inARun.map((s) => s.name)).toEqual([]);
    } finally {
      gw.kill('SIGKILL');
      wk.kill('SIGKILL');
    }
  });

  test('--otel-parent: the CONSUMER span is the PRODUCER span’s child, in the caller’s trace', async () => {
    const childPrefix = uniquePrefix('traces-parent');
    const gw = await startSwitchyard(
      'gateway',
      ['--app', APP, '--redis', redis.url, '--prefix', childPrefix, '--port', '0', '--host', '127.0.0.1'],
      otlpEnv(receiver, 'gateway'),
    );
    const wk = await startSwitchyard('worker', ['--app', APP, '--redis', redis.url, '--prefix', childPrefix, '--otel-parent'], otlpEnv(receiver, 'worker'));
    try {
      const caller = newCaller();
      const [reply] = await callFromPython(`127.0.0.1:${gw.ready.port}`, caller.traceparent, {
        method: 'POST',
        url: '/jobs/8',
        reply: false,
        queue_detail: { level: 1, limit_policy: 'execute' },
      });
      const id = reply.data.id!;
      const spans = await receiver.waitFor((all) => all.some((s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === id));
      const producer = one(spans, (s) => s.traceId === caller.traceId && s.kind === KIND.PRODUCER)!;
      const consumer = one(spans, (s) => s.kind === KIND.CONSUMER && s.attributes['messaging.message.id'] === id)!;
      expect(consumer).toMatchObject({ traceId: caller.traceId, parentSpanId: producer.spanId });
    } finally {
      gw.kill('SIGKILL');
      wk.kill('SIGKILL');
    }
  });
});
