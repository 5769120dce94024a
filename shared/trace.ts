// Traces: OpenTelemetry through `@opentelemetry/api` only. The library never starts an SDK; a
// user registers one (or starts a process with --otel). With none registered, `tracingOn()` is
// false and the call paths skip every span, context and carrier: nothing is allocated for it.
// Names and attributes follow the semantic conventions for RPC and messaging (docs/protocol.md,
// section 10, lists each one).
import {
  context,
  createTraceState,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type TextMapGetter,
} from '@opentelemetry/api';

export { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span };

export const tracer = trace.getTracer('switchyard');

/** The provider the API hands out while no SDK is registered (a fresh proxy has no delegate). */
const NoProvider = new ProxyTracerProvider().getDelegate().constructor;

/**
 * Whether an SDK is registered: decided per call (57 ns here), since one may be registered after
 * this module loads, and `trace.disable()` replaces the API's global proxy (so it is not kept).
 */
export function tracingOn(): boolean {
  const provider = trace.getTracerProvider();
  const delegate = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
  return !(delegate instanceof NoProvider);
}

/**
 * The W3C trace context stored with a job (`"trace"`, `"tracestate"` of its payload). Always this
 * format, whatever propagator the process registered (OTEL_PROPAGATORS=b3 changes what the
 * gateway reads from a caller, never what a payload holds): gateways and workers configured
 * differently still read each other's jobs, and the scripts read it (carryLinks.lua).
 */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

/** The traceparent a job stores: version 00, lowercase hex, nothing after the flags. */
const STORED_TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The context a stored carrier names; ROOT when it names none (or an invalid one). */
export function contextOf(carrier: TraceCarrier | undefined): Context {
  const match = carrier?.traceparent ? STORED_TRACEPARENT.exec(carrier.traceparent) : null;
  if (!match) return ROOT_CONTEXT;
  const spanContext: SpanContext = { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16), isRemote: true };
  if (!trace.isSpanContextValid(spanContext)) return ROOT_CONTEXT;
  if (carrier!.tracestate) spanContext.traceState = createTraceState(carrier!.tracestate);
  return trace.setSpanContext(ROOT_CONTEXT, spanContext);
}

/**
 * The caller's context from a call's headers (gRPC metadata), read by the registered propagator:
 * `traceparent`/`tracestate` by default, `b3` or `uber-trace-id` when the process is set up so.
 */
export function callerContextOf(header: (name: string) => string | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, header, callGetter);
}

const callGetter: TextMapGetter<(name: string) => string | undefined> = {
  keys: () => propagation.fields(),
  get: (header, key) => header(key.toLowerCase()),
};

/** The carrier of a context's span, to store with a job; undefined when the context holds no valid span. */
export function carrierOf(ctx: Context): TraceCarrier | undefined {
  const spanContext = trace.getSpan(ctx)?.spanContext();
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return undefined;
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  const traceparent = `00-${spanContext.traceId.toLowerCase()}-${spanContext.spanId.toLowerCase()}-${flags}`;
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/** A link to the span a carrier names; undefined when it names none (or an invalid one). */
export function linkTo(carrier: TraceCarrier | undefined, attributes?: Attributes): Link | undefined {
  const spanContext = trace.getSpan(contextOf(carrier))?.spanContext();
  return spanContext ? { context: spanContext, attributes } : undefined;
}

/** Records an error on a span as the conventions ask: an `exception` event and an ERROR status. */
export function recordFailure(span: Span, error: { name?: string; message: string }, event = 'exception', attributes: Attributes = {}): void {
  span.addEvent(event, { 'exception.type': error.name ?? 'Error', 'exception.message': error.message, ...attributes });
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

/** Runs fn with span as the active span (so spans the route or handler starts are its children). */
export function runInSpan<T>(span: Span, parent: Context, fn: () => T): T {
  return context.with(trace.setSpan(parent, span), fn);
}

/**
 * A context with no span in it, for background loops (claims, lease renewal, recovery,
 * promotion): what they start never joins the trace of a job that happened to start them.
 */
export function outsideAnyTrace<T>(fn: () => T): T {
  return context.with(ROOT_CONTEXT, fn);
}
