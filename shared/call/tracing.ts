// The spans of one call: the gateway's SERVER span (sync or async), named after the route
// template so their names stay few, with the RPC and HTTP attributes of the conventions.
// Everything here runs only while tracing is on (shared/trace.ts, tracingOn()).
import { recordFailure, SpanKind, SpanStatusCode, tracer, type Context, type Span } from '../trace';
import type { LoadedApp } from './app';
import type { CallRequest } from './params';
import type { Reply } from './output';

export const RPC_SERVICE = 'rpc.RPCServer';

/** The template of the route a router would run for method and path (`/users/:id`), if one matches. */
export function routeTemplate(loaded: LoadedApp, method: string, url: string): string | undefined {
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  for (const router of loaded.routers) {
    const match = router.match(path, method) as { pathAndMethod?: Array<{ path?: unknown }>; route: boolean };
    const layers = match.pathAndMethod ?? [];
    for (let i = layers.length - 1; i >= 0; i--) if (typeof layers[i].path === 'string') return layers[i].path as string;
  }
  return undefined;
}

/** `METHOD /template`, or the method alone when no route matches (never the raw URL: names stay few). */
function spanName(method: string, route: string | undefined): string {
  return route === undefined ? method : `${method} ${route}`;
}

/** The SERVER span of a gRPC call, continuing the caller's context (`parent`). */
export function startServerSpan(parent: Context, grpcMethod: string, call: CallRequest, loaded: LoadedApp): Span {
  const route = routeTemplate(loaded, call.method, call.url);
  const span = tracer.startSpan(
    spanName(call.method, route),
    {
      kind: SpanKind.SERVER,
      attributes: {
        'rpc.system': 'grpc',
        'rpc.service': RPC_SERVICE,
        'rpc.method': grpcMethod,
        'http.request.method': call.method,
        'switchyard.call.kind': call.reply ? 'sync' : 'async',
      },
    },
    parent,
  );
  if (route !== undefined) span.setAttribute('http.route', route);
  return span;
}

/**
 * The route Koa really ran (a router sets `_matchedRoute`), named on the span once the call is
 * answered; a sync call's SERVER span is renamed after it (a job's CONSUMER span keeps its name).
 */
export function noteRouteRun(span: Span, method: string, ctx: { _matchedRoute?: unknown }, rename: boolean): void {
  const route = ctx._matchedRoute;
  if (typeof route !== 'string') return;
  span.setAttribute('http.route', route);
  if (rename) span.updateName(spanName(method, route));
}

/**
 * Ends the SERVER span with the answer: every answer is gRPC OK (the status is in the content),
 * the Koa status is `http.response.status_code`, and a 5xx marks the span as an error (a 4xx is
 * the caller's, as for HTTP servers).
 */
export function endServerSpan(span: Span, reply: Reply): void {
  span.setAttribute('rpc.grpc.status_code', 0);
  span.setAttribute('http.response.status_code', reply.status);
  if (reply.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `status ${reply.status}` });
  span.end();
}

/** A queue's name in spans and metrics: level and policy, `L1:execute`. */
export function destinationOf(level: number, policy: string): string {
  return `L${level}:${policy}`;
}

/** The PRODUCER span of an async call, a child of its SERVER span: `send L<level>:<policy>`. */
export function startProducerSpan(parent: Context, level: number, policy: string, callerId: string | undefined, partition: number): Span {
  const destination = destinationOf(level, policy);
  return tracer.startSpan(
    `send ${destination}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'switchyard',
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'send',
        'messaging.destination.name': destination,
        'switchyard.partition': partition,
        ...(callerId !== undefined && { 'messaging.message.id': callerId }),
      },
    },
    parent,
  );
}

/**
 * Ends a PRODUCER span with the step's outcome: queued, replaced, refused, dropped, duplicate
 * (the job's id then known), or failed (Redis did not take it; the error recorded).
 */
export function endProducerSpan(span: Span, outcome: string, id?: string, error?: Error): void {
  span.setAttribute('switchyard.outcome', outcome);
  if (id !== undefined) span.setAttribute('messaging.message.id', id);
  if (error) recordFailure(span, error);
  span.end();
}
