// Traces: OpenTelemetry through `@opentelemetry/api` only. The library never starts an SDK; a
// user registers one (or starts a process with --otel). With none registered, `tracingOn()` is
// false and the call paths skip every span, context and carrier: nothing is allocated for it.
// Names and attributes follow the semantic conventions for RPC and messaging (docs/protocol.md,
// section 10, lists each one).
import {
  context,
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
  type TextMapGetter,
} from '@opentelemetry/api';

export { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span };

export const tracer = trace.getTracer('switchyard');

/** The provider the API hands out while no SDK is registered (a fresh proxy has no delegate). */
const NoProvider = new ProxyTracerProvider().getDelegate().constructor;

/**
 * The API's global provider: a proxy that stays the same object when an SDK registers (the SDK
 * becomes its delegate), so it is read once and asked per call.
 */
const globalProvider = trace.getTracerProvider();

/** Whether an SDK is registered: decided per call, since one may be registered after this module loads. */
export function tracingOn(): boolean {
  const delegate = globalProvider instanceof ProxyTracerProvider ? globalProvider.getDelegate() : trace.getTracerProvider();
  return !(delegate instanceof NoProvider);
}

/** The W3C trace context of a job or a call: what travels in gRPC metadata and is stored with a job. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

const carrierGetter: TextMapGetter<TraceCarrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => (key === 'traceparent' ? carrier.traceparent : key === 'tracestate' ? carrier.tracestate : undefined),
};

/** The context a carrier names (the global propagator: W3C trace context by default); ROOT when it names none. */
export function contextOf(carrier: TraceCarrier | undefined): Context {
  if (!carrier?.traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier, carrierGetter);
}

/** The carrier of a context's span, to store with a job; undefined when the context holds no span. */
export function carrierOf(ctx: Context): TraceCarrier | undefined {
  if (!trace.getSpan(ctx)) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  if (!carrier.traceparent) return undefined;
  return carrier.tracestate ? { traceparent: carrier.traceparent, tracestate: carrier.tracestate } : { traceparent: carrier.traceparent };
}

/** A link to the span a carrier names; undefined when it names none (or an invalid one). */
export function linkTo(carrier: TraceCarrier | undefined, attributes?: Attributes): Link | undefined {
  const span = carrier?.traceparent ? trace.getSpan(contextOf(carrier)) : undefined;
  if (!span) return undefined;
  const spanContext = span.spanContext();
  return trace.isSpanContextValid(spanContext) ? { context: spanContext, attributes } : undefined;
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
