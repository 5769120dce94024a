// The RPCServer service: Input.params → a sync dispatch or an enqueue → Output.content.
import type * as grpc from '@grpc/grpc-js';
import type { LoadedApp } from '../shared/call/app';
import { dispatch } from '../shared/call/dispatch';
import { SwitchyardError } from '../shared/errors';
import { encodeReply, errorReply, type Reply } from '../shared/call/output';
import { parseParams, type CallRequest, type ParamsLimits } from '../shared/call/params';
import { type Input, type Output } from '../shared/call/wire';

/** Puts an async call into the queues; answers 201/409/503 as SPEC section 1 says. */
export interface Enqueuer {
  enqueue(request: CallRequest): Promise<Reply>;
}

export interface RpcServiceOptions extends ParamsLimits {
  app: LoadedApp;
  /** Absent: async calls answer 503 (no queue configured). */
  queue?: Enqueuer;
  defaultTimeoutMs: number;
  debug: boolean;
  /** Called once per call with its outcome, for metrics. */
  observe?: (kind: 'sync' | 'async' | 'invalid', status: number, startedAt: number) => void;
}

function remainingMs(call: grpc.ServerUnaryCall<Input, Output>): number {
  const deadline = call.getDeadline();
  if (deadline === Infinity) return Infinity;
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  return Math.max(0, at - Date.now());
}

export function createRpcHandler(options: RpcServiceOptions): grpc.handleUnaryCall<Input, Output> {
  const limits: ParamsLimits = { maxParamsBytes: options.maxParamsBytes, maxBodyBytes: options.maxBodyBytes };

  const observe = options.observe;
  const internalError = (err: unknown): Reply =>
    err instanceof SwitchyardError ? errorReply(err) : { status: 500, data: `internal error: ${(err as Error)?.message ?? err}` };

  return (call, callback) => {
    const startedAt = observe ? performance.now() : 0;
    let request: CallRequest;
    try {
      request = parseParams(call.request.params, limits);
    } catch (err) {
      const reply = internalError(err);
      observe?.('invalid', reply.status, startedAt);
      callback(null, { content: encodeReply(reply) });
      return;
    }
    let pending: Promise<Reply>;
    if (request.reply) {
      const timeoutMs = Math.min(options.defaultTimeoutMs, request.timeoutMs ?? Infinity, remainingMs(call));
      pending = dispatch(options.app, request, { timeoutMs, debug: options.debug });
    } else if (options.queue) {
      pending = options.queue.enqueue(request);
    } else {
      pending = Promise.resolve({ status: 503, data: 'queue unavailable: this gateway has no Redis configured' });
    }
    const kind = request.reply ? 'sync' : 'async';
    pending.then(
      (reply) => {
        observe?.(kind, reply.status, startedAt);
        callback(null, { content: encodeReply(reply) });
      },
      (err: unknown) => {
        const reply = internalError(err);
        observe?.(kind, reply.status, startedAt);
        callback(null, { content: encodeReply(reply) });
      },
    );
  };
}
