// The spans of a sync call, recorded in-process by a real SDK with an in-memory exporter: the
// SERVER span continues the caller's traceparent, is named after the route template, and the
// route's own spans are its children. Without an SDK, tracing is off and nothing is traced.
import Koa from 'koa';
import Router from '@koa/router';
import { node, tracing } from '@opentelemetry/sdk-node';
import { dispatch } from '../../shared/call/dispatch';
import { toLoadedApp } from '../../shared/call/app';
import { parseParams } from '../../shared/call/params';
import { endServerSpan, startServerSpan } from '../../shared/call/tracing';
import { carrierOf, contextOf, linkTo, tracer, tracingOn, trace, context, SpanKind } from '../../shared/trace';

const LIMITS = { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 };
const CALLER = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=1' };

describe('tracing', () => {
  const exporter = new tracing.InMemorySpanExporter();

  test('off until an SDK is registered: no span, no carrier', () => {
    expect(tracingOn()).toBe(false);
    const span = tracer.startSpan('x');
    expect(span.isRecording()).toBe(false);
    span.end();
  });

  test('on: a SERVER span continues the caller and parents the route', async () => {
    const provider = new node.NodeTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });
    provider.register();
    expect(tracingOn()).toBe(true);

    const router = new Router();
    router.get('/users/:id', (ctx) => {
      const inner = tracer.startSpan('db.query');
      inner.end();
      ctx.body = { id: ctx.params.id, traced: trace.getSpan(context.active()) !== undefined };
    });
    const app = new Koa();
    app.use(router.routes());
    const loaded = await toLoadedApp(app);

    const call = parseParams(JSON.stringify({ method: 'GET', url: '/users/42?x=1', reply: true }), LIMITS);
    const span = startServerSpan(contextOf(CALLER), 'handel', call, loaded);
    const reply = await dispatch(loaded, call, { timeoutMs: 1000, span });
    endServerSpan(span, reply);
    expect(reply.status).toBe(200);

    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    const inner = spans.find((s) => s.name === 'db.query')!;
    expect(server.name).toBe('GET /users/:id');
    expect(server.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(server.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(server.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'rpc.RPCServer',
      'rpc.method': 'handel',
      'http.request.method': 'GET',
      'http.route': '/users/:id',
      'http.response.status_code': 200,
      'rpc.grpc.status_code': 0,
    });
    expect(inner.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(inner.spanContext().traceId).toBe(server.spanContext().traceId);
  });

  test('no route: the span is named after the method only, never the raw URL', async () => {
    const loaded = await toLoadedApp(new Koa());
    const call = parseParams(JSON.stringify({ method: 'POST', url: '/nowhere/9d8f7', reply: true }), LIMITS);
    const span = startServerSpan(contextOf(undefined), 'handle', call, loaded);
    endServerSpan(span, await dispatch(loaded, call, { span }));
    const server = exporter.getFinishedSpans().find((s) => s.attributes['rpc.method'] === 'handle')!;
    expect(server.name).toBe('POST');
    expect(server.attributes['http.response.status_code']).toBe(404);
    expect(server.parentSpanContext).toBeUndefined();
  });

  test('a carrier round-trips through a stored job, and links to it', () => {
    const span = tracer.startSpan('send', { kind: SpanKind.PRODUCER }, contextOf(CALLER));
    const carrier = carrierOf(trace.setSpan(contextOf(undefined), span))!;
    expect(carrier.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(carrier.tracestate).toBe('vendor=1');
    const link = linkTo(carrier)!;
    expect(link.context.spanId).toBe(span.spanContext().spanId);
    expect(linkTo({ traceparent: 'garbage' })).toBeUndefined();
    expect(carrierOf(contextOf(undefined))).toBeUndefined();
    span.end();
  });
});
