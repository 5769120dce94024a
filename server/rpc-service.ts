// The RPCServer service: Input.params → a sync dispatch or an enqueue → Output.content.
import type { LoadedApp } from '../shared/call/app';
import { dispatch } from '../shared/call/dispatch';
import { encodeReply, type Reply } from '../shared/call/output';
import { noQueueConfigured, replyFor } from '../shared/call/errors';
import { RunAbort } from '../shared/call/run-abort';
import { parseParams, type CallRequest, type ParamsLimits } from '../shared/call/params';
import { endServerSpan, startServerSpan } from '../shared/call/tracing';
import { callerContextOf, context, trace, tracingOn, type Span } from '../shared/trace';

/** Puts an async call into the queues; answers 201/200/409/503 (docs/protocol.md, section 3). */
export interface Enqueuer {
  /** `connectWaitMs`: how long the call may wait for a Redis connection that is not ready yet. */
  enqueue(request: CallRequest, connectWaitMs: number): Promise<Reply>;
}

/**
 * An async call waiting for Redis answers this long before the caller's gRPC deadline, so the
 * caller reads the 503 that says "not queued" instead of a DEADLINE_EXCEEDED that says nothing.
 */
const ANSWER_BEFORE_DEADLINE_MS = 100;

export interface RpcServiceOptions extends ParamsLimits {
  app: LoadedApp;
  /** Absent: async calls answer 503 (no queue configured). */
  queue?: Enqueuer;
  defaultTimeoutMs: number;
  debug: boolean;
  /** Called once per call with its outcome, for metrics. */
  observe?: (kind: 'sync' | 'async' | 'invalid', status: number, startedAt: number) => void;
}

/** One call as the service sees it, whatever carries it (server/grpc/call.ts does). */
export interface RpcCall {
  /** Input.params. */
  readonly request: string;
  /** A request header: gRPC metadata such as `traceparent` (`:path` names the method). */
  header(name: string): string | undefined;
  /** Milliseconds left before the caller's deadline (Infinity without one). */
  remainingMs(): number;
  /** Set by the service: aborted once if the call ends unanswered (the caller cancelled, its deadline passed). */
  onCancel: { abort(reason: Error): void } | null;
  /** Output.content; ignored once the call has ended. */
  respond(content: string): void;
}

export interface RpcHandler {
  handle(call: RpcCall): void;
  /** Calls received and not yet answered. */
  inFlight(): number;
}

export function createRpcHandler(options: RpcServiceOptions): RpcHandler {
  const limits: ParamsLimits = { maxParamsBytes: options.maxParamsBytes, maxBodyBytes: options.maxBodyBytes };
  const observe = options.observe;
  let inFlight = 0;

  const handle = (call: RpcCall): void => {
    const startedAt = observe ? performance.now() : 0;
    let request: CallRequest;
    try {
      request = parseParams(call.request, limits);
    } catch (err) {
      const reply = replyFor(err);
      observe?.('invalid', reply.status, startedAt);
      call.respond(encodeReply(reply));
      return;
    }
    let pending: Promise<Reply>;
    // Only with an SDK registered: the call's SERVER span, continuing the caller's trace.
    const span = tracingOn() ? serverSpan(call, request, options) : undefined;
    if (request.reply) {
      const timeoutMs = Math.min(options.defaultTimeoutMs, request.timeoutMs ?? Infinity, call.remainingMs());
      // The run's abort is the call's cancel hook: its reason is made only if the call is cancelled.
      const abort = new RunAbort();
      call.onCancel = abort;
      pending = dispatch(options.app, request, { timeoutMs, debug: options.debug, abort, span });
    } else if (options.queue) {
      // A gateway still connecting (or reconnecting) is no reason to fail a call that can wait:
      // it waits within its own deadline, the shorter of the gRPC one and its `timeout`, and
      // never longer than --timeout.
      const connectWaitMs = Math.min(options.defaultTimeoutMs, request.timeoutMs ?? Infinity, call.remainingMs() - ANSWER_BEFORE_DEADLINE_MS);
      const queue = options.queue;
      // The enqueue runs in the SERVER span's context: its PRODUCER span is that span's child.
      pending = span ? context.with(trace.setSpan(context.active(), span), () => queue.enqueue(request, connectWaitMs)) : queue.enqueue(request, connectWaitMs);
    } else {
      pending = Promise.resolve(replyFor(noQueueConfigured()));
    }
    const kind = request.reply ? 'sync' : 'async';
    inFlight++;
    const answer = (reply: Reply): void => {
      inFlight--;
      observe?.(kind, reply.status, startedAt);
      call.respond(encodeReply(reply));
      if (span) endServerSpan(span, reply);
    };
    pending.then(answer, (err: unknown) => answer(replyFor(err)));
  };
  return { handle, inFlight: () => inFlight };
}

/** The method's name from the call's path: `/rpc.RPCServer/handel` → `handel`. */
function methodOf(call: RpcCall): string {
  const path = call.header(':path') ?? '';
  return path.slice(path.lastIndexOf('/') + 1);
}

function serverSpan(call: RpcCall, request: CallRequest, options: RpcServiceOptions): Span {
  const caller = callerContextOf((name) => call.header(name));
  return startServerSpan(caller, methodOf(call), request, options.app);
}
