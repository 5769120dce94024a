// Runs one call through the user's Koa app in-process: the app's own createContext on a
// socket-less request/response pair, then its composed middleware. No HTTP parsing, no
// fake socket: Koa's request/response getters only read the few fields set here.
/* eslint-disable @typescript-eslint/no-explicit-any -- Koa contexts come from the user's own copy of koa, handled by shape */
import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import { methodNotAllowed, noRoute, replyFor, syncDeadline, type SwitchyardError } from './errors';
import { log } from '../log';
import type { LoadedApp } from './app';
import type { Reply } from './output';
import type { CallRequest } from './params';
import type { Level, Policy } from '../levels';
import type { RpcState } from './rpc-state';
import { RunAbort } from './run-abort';
import { Deadline, deadlines } from './deadlines';
import { context, trace, type Span } from '../trace';
import { noteRouteRun } from './tracing';

export interface DispatchOptions {
  /** Deadline in ms: when it passes the call answers 504 and the route's signal is aborted. */
  timeoutMs?: number;
  /** The error a passed deadline answers (a sync call's or a job's). */
  deadline?: (ms: number) => SwitchyardError;
  /** Answer a 5xx with the route's message and stack (else the status text). */
  debug?: boolean;
  /** Set by the worker: the job run. */
  job?: { id: string; attempt: number; fence: number };
  /** Lets the caller abort the run (a cancelled call, a lost lease); one is made when absent. */
  abort?: RunAbort;
  /**
   * Told when the route's own work ends, which is later than the answer when the deadline
   * passed first (the worker holds a `last` key until then).
   */
  whenRouteEnds?: (ended: Promise<void>) => void;
  /** While tracing: the call's or the job's span. The route runs inside it; the route it ran is named on it. */
  span?: Span;
}

/**
 * ctx.state.rpc: plain fields, and the signal made on first read. The run's abort is held in a
 * private field: a route reads the signal, it cannot abort its own run (nor finds an undocumented
 * `abort` beside the documented fields).
 */
class RunState implements RpcState {
  readonly #abort: RunAbort;
  constructor(
    readonly reply: boolean,
    readonly level: Level | null,
    readonly policy: Policy | null,
    readonly key: string | null,
    readonly jobId: string | null,
    readonly attempt: number,
    readonly fence: number | null,
    abort: RunAbort,
  ) {
    this.#abort = abort;
  }
  get signal(): AbortSignal {
    return this.#abort.signal;
  }
  toJSON(): Omit<RpcState, 'signal'> {
    const { reply, level, policy, key, jobId, attempt, fence } = this;
    return { reply, level, policy, key, jobId, attempt, fence };
  }
}

const LOOPBACK_SOCKET = Object.freeze({ remoteAddress: '127.0.0.1', encrypted: false, writable: true });

class InProcessRequest {
  readonly socket = LOOPBACK_SOCKET;
  readonly httpVersionMajor = 2;
  readonly httpVersion = '2.0';
  constructor(
    public url: string,
    public method: string,
    public headers: Record<string, string>,
    public body: unknown,
  ) {}
}

/**
 * What Koa's response reads and writes. Events are only needed for stream bodies
 * (on-finished listens for 'finish'), so the emitter is created on first use.
 */
class InProcessResponse {
  statusCode = 404;
  statusMessage = '';
  headersSent = false;
  writableEnded = false;
  finished = false;
  readonly socket = null;
  // A Map, not a prototype-free object: such objects start in V8's slow dictionary mode,
  // and Koa sets two or three headers on every call.
  private readonly headers = new Map<string, string | number | string[]>();
  setHeader(name: string, value: string | number | string[]): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }
  getHeader(name: string): string | number | string[] | undefined {
    return this.headers.get(name.toLowerCase());
  }
  getHeaders(): Record<string, string | number | string[]> {
    return Object.fromEntries(this.headers);
  }
  getHeaderNames(): string[] {
    return [...this.headers.keys()];
  }
  hasHeader(name: string): boolean {
    return this.headers.has(name.toLowerCase());
  }
  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase());
  }
  private emitter: EventEmitter | undefined;
  private events(): EventEmitter {
    return (this.emitter ??= new EventEmitter());
  }
  on(event: string, listener: (...args: unknown[]) => void): this {
    this.events().on(event, listener);
    return this;
  }
  once(event: string, listener: (...args: unknown[]) => void): this {
    this.events().once(event, listener);
    return this;
  }
  removeListener(event: string, listener: (...args: unknown[]) => void): this {
    this.emitter?.removeListener(event, listener);
    return this;
  }
  emit(event: string, ...args: unknown[]): boolean {
    return this.emitter?.emit(event, ...args) ?? false;
  }
}

/**
 * Runs the call and settles with its reply; never rejects. One promise per call on the hot
 * path: the deadline, the route's outcome and the reply meet in a single resolve.
 */
export function dispatch(loaded: LoadedApp, call: CallRequest, options: DispatchOptions = {}): Promise<Reply> {
  const headers = call.headers;
  if (call.content !== null && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  const req = new InProcessRequest(call.url, call.method, headers, call.content);
  const res = new InProcessResponse();
  const { app } = loaded;
  const ctx = app.createContext(req, res);
  ctx.request.body = call.content;
  const q = call.queue;
  const abort = options.abort ?? new RunAbort();
  const job = options.job;
  ctx.state.rpc = new RunState(
    call.reply,
    q?.level ?? null,
    q?.policy ?? null,
    q?.policy === 'last' ? q.key : null,
    job?.id ?? null,
    job?.attempt ?? 1,
    job?.fence ?? null,
    abort,
  );

  let running: Promise<unknown>;
  const span = options.span;
  try {
    const run = (): Promise<unknown> => (app.ctxStorage ? app.ctxStorage.run(ctx, () => loaded.run(ctx)) : loaded.run(ctx));
    running = span ? context.with(trace.setSpan(context.active(), span), run) : run();
    if (span) running = running.finally(() => noteRouteRun(span, call.method, ctx, call.reply));
  } catch (err) {
    options.whenRouteEnds?.(Promise.resolve());
    return Promise.resolve(errorToReply(loaded, ctx, err, options));
  }
  options.whenRouteEnds?.(running.then(ignore, ignore));
  const answered = (): Reply | Promise<Reply> => {
    try {
      return replyFrom(loaded, ctx, call, options);
    } catch (err) {
      return errorToReply(loaded, ctx, err, options);
    }
  };
  const threw = (err: unknown): Reply => errorToReply(loaded, ctx, err, options);
  const timeoutMs = options.timeoutMs;
  if (timeoutMs === undefined || timeoutMs === Infinity) return running.then(answered, threw);
  return new Promise<Reply>((resolve) => {
    // The route is told through its signal; whatever it answers later is ignored.
    const timed = new TimedRun(resolve, abort, timeoutMs, options.deadline ?? syncDeadline);
    deadlines.add(timed, timeoutMs);
    running.then(
      () => {
        if (deadlines.remove(timed)) resolve(answered());
      },
      (err: unknown) => {
        if (deadlines.remove(timed)) resolve(threw(err));
      },
    );
  });
}

/** A run's deadline in the shared sweep: when it passes, the route's signal aborts and the call answers 504. */
class TimedRun extends Deadline {
  constructor(
    private readonly resolve: (reply: Reply) => void,
    private readonly abort: RunAbort,
    private readonly timeoutMs: number,
    private readonly deadline: (ms: number) => SwitchyardError,
  ) {
    super();
  }
  expire(): void {
    const err = this.deadline(this.timeoutMs);
    this.abort.abort(err);
    this.resolve(replyFor(err));
  }
}

function ignore(): void {}

/** Synchronous except for a stream body, which is read to the end first. */
function replyFrom(loaded: LoadedApp, ctx: any, call: CallRequest, options: DispatchOptions): Reply | Promise<Reply> {
  const body: unknown = ctx.body;
  if (body instanceof Readable) {
    return readStream(body).then(
      (text) => replyWithBody(loaded, ctx, call, text),
      (err: unknown) => errorToReply(loaded, ctx, err, options),
    );
  }
  return replyWithBody(loaded, ctx, call, Buffer.isBuffer(body) ? body.toString('utf8') : body);
}

function replyWithBody(loaded: LoadedApp, ctx: any, call: CallRequest, body: unknown): Reply {
  const status: number = ctx.status;
  if (body === undefined || body === null) {
    if (status === 404) return notFoundOrNotAllowed(loaded, ctx, call);
    if (status === 405) return replyFor(methodNotAllowed(call.method, ctx.path, ctx.response.get('Allow')));
    if (status >= 400) return { status, data: STATUS_CODES[status] ?? `status ${status}` };
    return { status, data: null };
  }
  return { status, data: body };
}

/** An untouched 404 is either "no route" or, when a router knows the path, "wrong method". */
function notFoundOrNotAllowed(loaded: LoadedApp, ctx: any, call: CallRequest): Reply {
  const allowed = new Set<string>();
  for (const router of loaded.routers) {
    const match = router.match(ctx.path, call.method);
    if (match.route) continue;
    for (const layer of match.path) for (const m of layer.methods) allowed.add(m);
  }
  if (allowed.size > 0) return replyFor(methodNotAllowed(call.method, ctx.path, [...allowed].join(', ')));
  return replyFor(noRoute(call.method, ctx.path));
}

/**
 * A route that threw answers as Koa would: the error's status (500 when it has none or an
 * invalid one), and as data its message only when the error says it may be shown
 * (`expose: true`, what ctx.throw(4xx, msg) sets), else the status text. A 5xx is logged
 * with its message and stack, and the app's own 'error' listeners hear it too.
 */
function errorToReply(loaded: LoadedApp, ctx: any, err: unknown, options: DispatchOptions): Reply {
  const e = (err ?? {}) as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown; stack?: unknown };
  const given = typeof e.status === 'number' ? e.status : e.statusCode;
  const status = typeof given === 'number' && given >= 400 && given <= 599 && STATUS_CODES[given] ? given : 500;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  const stack = typeof e.stack === 'string' ? e.stack : undefined;
  if (status >= 500) {
    const job = options.job;
    log.error(
      { event: 'route_error', method: ctx.method, url: ctx.url, status, ...(job && { job: job.id, attempt: job.attempt }), err: { message, stack } },
      `${ctx.method} ${ctx.url} threw: ${message}`,
    );
    if (loaded.app.listenerCount('error') > 0) {
      try {
        loaded.app.emit('error', err, ctx);
      } catch (listenerErr) {
        log.error(
          { event: 'app_error_listener_threw', err: { message: (listenerErr as Error)?.message ?? String(listenerErr) } },
          "the app's 'error' listener threw",
        );
      }
    }
  }
  let data: string;
  if (options.debug) data = stack && status >= 500 ? `${message}\n${stack}` : message;
  else data = e.expose === true ? message : STATUS_CODES[status]!;
  return { status, data, error: message };
}

async function readStream(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}
