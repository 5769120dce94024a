// Runs one call through the user's Koa app in-process: the app's own createContext on a
// socket-less request/response pair, then its composed middleware. No HTTP parsing, no
// fake socket: Koa's request/response getters only read the few fields set here.
import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import type { LoadedApp } from './app';
import type { Reply } from './output';
import type { CallRequest } from './params';
import type { RpcState } from './rpc-state';

export interface DispatchOptions {
  /** Deadline in ms; when it passes the call answers 504 (the handler is not interrupted). */
  timeoutMs?: number;
  /** Include stack traces in 500 answers. */
  debug?: boolean;
  /** Set by the worker: the job being run. */
  job?: { id: string; attempt: number };
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
  ctx.state.rpc = {
    reply: call.reply,
    level: q?.level ?? null,
    policy: q?.policy ?? null,
    key: q?.policy === 'last' ? q.key : null,
    jobId: options.job?.id ?? null,
    attempt: options.job?.attempt ?? 1,
  } satisfies RpcState;

  let running: Promise<unknown>;
  try {
    running = app.ctxStorage ? app.ctxStorage.run(ctx, () => loaded.run(ctx)) : loaded.run(ctx);
  } catch (err) {
    return Promise.resolve(errorToReply(loaded, ctx, err, options));
  }
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
    let late = false;
    // The handler is not interrupted: it runs on, and its outcome is ignored.
    const timer = setTimeout(() => {
      late = true;
      resolve({ status: 504, data: `deadline of ${timeoutMs} ms passed before the route answered` });
    }, timeoutMs);
    running.then(
      () => {
        if (late) return;
        clearTimeout(timer);
        resolve(answered());
      },
      (err: unknown) => {
        if (late) return;
        clearTimeout(timer);
        resolve(threw(err));
      },
    );
  });
}

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
    if (status === 405) return { status, data: `method ${call.method} is not allowed on ${ctx.path} (allowed: ${ctx.response.get('Allow') || 'none'})` };
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
  if (allowed.size > 0) {
    return { status: 405, data: `method ${call.method} is not allowed on ${ctx.path} (allowed: ${[...allowed].join(', ')})` };
  }
  return { status: 404, data: `no route matches ${call.method} ${ctx.path}` };
}

function errorToReply(loaded: LoadedApp, ctx: any, err: unknown, options: DispatchOptions): Reply {
  const e = (err ?? {}) as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown; stack?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  if (status >= 400 && status < 500) {
    // ctx.throw(4xx) is the app answering, not failing.
    return { status, data: e.expose === false ? STATUS_CODES[status] ?? message : message };
  }
  if (loaded.app.listenerCount('error') > 0) {
    try {
      loaded.app.emit('error', err, ctx);
    } catch (listenerErr) {
      process.stderr.write(`switchyard: the app's 'error' listener threw: ${(listenerErr as Error)?.message ?? listenerErr}\n`);
    }
  } else if (!loaded.app.silent) process.stderr.write(`switchyard: ${ctx.method} ${ctx.url} threw: ${message}\n`);
  const data = options.debug && typeof e.stack === 'string' ? `${message}\n${e.stack}` : message;
  return { status: status >= 500 && status < 600 ? status : 500, data };
}

async function readStream(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}
