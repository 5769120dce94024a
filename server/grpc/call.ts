// One gRPC call on one HTTP/2 stream: reads its single request message (the length prefix
// first, so an oversized message is refused before a byte of it is buffered), hands it to the
// method, and writes the answer: headers, message, status in the trailers, or a trailers-only
// status. The call is its own entry in the shared deadline sweep (no timer per call).
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { Deadline, deadlines } from '../../shared/call/deadlines';
import { gunzipMessage, PREFIX_BYTES, TooLarge, writePrefix } from './framing';
import { RESPONSE_HEADERS, Status, statusTrailers, trailersOnly, type StatusCode } from './status';

/** What a method is told when its call ends unanswered; a RunAbort fits. */
export interface CancelHook {
  abort(reason: Error): void;
}

/** A method: its request and response codecs and its handler. Every method takes exactly one request message. */
export interface Method<Req, Res> {
  /** The bearer token is checked on its headers (when the server has one). */
  readonly auth: boolean;
  decode(message: Buffer): Req;
  /** The encoded response with `reserve` unwritten bytes before it. */
  encode(response: Res, reserve: number): Buffer;
  handle(call: GrpcCall<Req, Res>): void;
}

/**
 * Per HTTP/2 session: the bytes its calls hold, against a budget: request messages from their
 * length prefix until the stream closes, responses from their answer until the client has read
 * them (the stream closes).
 */
export class SessionBudget {
  held = 0;
  constructor(readonly limit: number) {}
}

const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });
const END_STREAM = Object.freeze({ endStream: true });

const RECEIVING = 0;
const HANDLING = 1;
const DONE = 2;

const CALL = Symbol('grpc call');
type CallStream = ServerHttp2Stream & { [CALL]: GrpcCall<unknown, unknown> };

// Listeners shared by every stream (`this` is the stream): nothing is made per call for them.
function onData(this: CallStream, chunk: Buffer): void {
  this[CALL].receive(chunk);
}
function onEnd(this: CallStream): void {
  this[CALL].received();
}
function onClose(this: CallStream): void {
  this[CALL].closed();
}
function onWantTrailers(this: CallStream): void {
  this.sendTrailers(this[CALL].trailers);
}

export class GrpcCall<Req, Res> extends Deadline {
  /** The decoded request message, set before the method's handler runs. */
  request!: Req;
  /** Set by the handler: told once when the call ends unanswered (cancelled, deadline passed, connection lost). */
  onCancel: CancelHook | null = null;
  /** Sent when the response's writable side ends (its status). */
  trailers: Record<string, string> = statusTrailers(Status.OK, '');
  private state = RECEIVING;
  private headersSent = false;
  private deadlineAt = Infinity;
  /** Bytes this call holds against its session's budget (released when its stream closes). */
  private held = 0;
  private messages = 0;
  private compressed = false;
  private prefix: Buffer | null = null;
  private prefixFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private message: Buffer | null = null;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly method: Method<Req, Res>,
    private readonly budget: SessionBudget,
    private readonly maxMessageBytes: number,
    private readonly gzip: boolean,
    timeoutMs: number,
  ) {
    super();
    (stream as CallStream)[CALL] = this as GrpcCall<unknown, unknown>;
    if (timeoutMs !== Infinity) {
      deadlines.add(this, timeoutMs);
      this.deadlineAt = this.at;
    }
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onClose);
  }

  /** A request header: gRPC metadata (`traceparent`, …; a `-bin` value as sent, base64) or a pseudo-header (`:path`). */
  header(name: string): string | undefined {
    const value = this.headers[name];
    return Array.isArray(value) ? value.join(',') : value;
  }

  /** Milliseconds until the caller's deadline (Infinity without one). */
  remainingMs(): number {
    return this.deadlineAt === Infinity ? Infinity : Math.max(0, this.deadlineAt - performance.now());
  }

  /** Answers a unary call: its one message, then OK. Ignored once the call has ended. */
  respond(response: Res): void {
    if (this.state !== HANDLING) return;
    this.end();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const framed = writePrefix(this.method.encode(response, PREFIX_BYTES));
    // The response is held until the client reads it: a client that never does may not pile up
    // answers past the budget (one response alone always goes, however large).
    const budget = this.budget;
    if (budget.held > 0 && budget.held + framed.length > budget.limit) {
      this.headersSent = true;
      stream.respond(trailersOnly(Status.RESOURCE_EXHAUSTED, `the connection holds more than ${budget.limit} bytes of unread responses`), END_STREAM);
      return;
    }
    budget.held += framed.length;
    this.held += framed.length;
    if (!this.headersSent) this.sendHeaders();
    stream.end(framed);
  }

  /** Sends one response message (a server-streaming method may send many). */
  send(response: Res): void {
    if (this.state !== HANDLING || this.stream.destroyed || this.stream.closed) return;
    const framed = writePrefix(this.method.encode(response, PREFIX_BYTES));
    this.budget.held += framed.length;
    this.held += framed.length;
    if (!this.headersSent) this.sendHeaders();
    this.stream.write(framed);
  }

  private sendHeaders(): void {
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS, WAIT_FOR_TRAILERS);
    this.stream.on('wantTrailers', onWantTrailers);
  }

  /** Ends the call with a status: in the trailers after the messages sent, else trailers-only. */
  finish(code: StatusCode, message: string): void {
    if (this.state === DONE) return;
    this.end();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    if (this.headersSent) {
      this.trailers = statusTrailers(code, message);
      stream.end();
    } else {
      this.headersSent = true;
      stream.respond(trailersOnly(code, message), END_STREAM);
    }
    // A client still sending is told to stop (RST_STREAM NO_ERROR, sent after the answer).
    if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
  }

  /** The deadline passed: DEADLINE_EXCEEDED, and a running handler is told. */
  expire(): void {
    const handling = this.state === HANDLING;
    this.finish(Status.DEADLINE_EXCEEDED, 'Deadline exceeded');
    if (handling) this.onCancel?.abort(new Error('the gRPC deadline passed'));
  }

  /** A chunk of the request stream: length prefixes and message bytes, in any split. */
  receive(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.state === RECEIVING) {
      const body = this.body;
      if (body !== null) {
        const n = Math.min(body.length - this.bodyFill, chunk.length - pos);
        chunk.copy(body, this.bodyFill, pos, pos + n);
        this.bodyFill += n;
        pos += n;
        if (this.bodyFill === body.length) {
          this.message = body;
          this.body = null;
        }
        continue;
      }
      let flag: number;
      let length: number;
      if (this.prefixFill === 0 && chunk.length - pos >= PREFIX_BYTES) {
        flag = chunk[pos];
        length = chunk.readUInt32BE(pos + 1);
        pos += PREFIX_BYTES;
      } else {
        const prefix = (this.prefix ??= Buffer.allocUnsafe(PREFIX_BYTES));
        const n = Math.min(PREFIX_BYTES - this.prefixFill, chunk.length - pos);
        chunk.copy(prefix, this.prefixFill, pos, pos + n);
        this.prefixFill += n;
        pos += n;
        if (this.prefixFill < PREFIX_BYTES) return;
        this.prefixFill = 0;
        flag = prefix[0];
        length = prefix.readUInt32BE(1);
      }
      if (!this.accept(flag, length)) return;
      if (chunk.length - pos >= length) {
        this.message = chunk.subarray(pos, pos + length);
        pos += length;
      } else {
        this.body = Buffer.allocUnsafe(length);
        this.bodyFill = 0;
      }
    }
  }

  /** Decides on a message from its prefix alone, before any of it is buffered. */
  private accept(flag: number, length: number): boolean {
    if (++this.messages > 1) {
      this.finish(Status.INTERNAL, 'more than one request message on a call that takes one');
      return false;
    }
    if (flag > 1) {
      this.finish(Status.INTERNAL, `invalid compressed flag ${flag} in the message prefix`);
      return false;
    }
    if (flag === 1 && !this.gzip) {
      this.finish(Status.INTERNAL, 'a compressed message on a call without grpc-encoding');
      return false;
    }
    if (length > this.maxMessageBytes) {
      // grpc-js' wording, which callers of earlier versions saw.
      this.finish(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs ${this.maxMessageBytes})`);
      return false;
    }
    const budget = this.budget;
    if (budget.held + length > budget.limit) {
      this.finish(Status.RESOURCE_EXHAUSTED, `the connection holds more than ${budget.limit} bytes of requests and unread responses`);
      return false;
    }
    budget.held += length;
    this.held = length;
    this.compressed = flag === 1;
    return true;
  }

  /** The request stream ended: exactly one whole message runs the method. */
  received(): void {
    if (this.state !== RECEIVING) return;
    if (this.body !== null || this.prefixFill > 0) return this.finish(Status.INTERNAL, 'the request ended inside a message');
    let message = this.message;
    if (message === null) return this.finish(Status.INTERNAL, 'the request ended without a message');
    this.message = null;
    try {
      if (this.compressed) message = gunzipMessage(message, this.maxMessageBytes);
      this.request = this.method.decode(message);
    } catch (err) {
      const code = err instanceof TooLarge ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL;
      return this.finish(code, err instanceof TooLarge ? err.message : `the request message could not be decoded: ${(err as Error).message}`);
    }
    this.state = HANDLING;
    try {
      this.method.handle(this);
    } catch (err) {
      this.finish(Status.UNKNOWN, `the method failed: ${(err as Error).message}`);
    }
  }

  /** The stream closed: a call not yet answered was cancelled (RST_STREAM, GOAWAY, lost connection). */
  closed(): void {
    const handling = this.state === HANDLING;
    if (this.state !== DONE) this.end();
    this.budget.held -= this.held;
    this.held = 0;
    if (handling) this.onCancel?.abort(new Error('the caller cancelled the call'));
  }

  private end(): void {
    this.state = DONE;
    if (this.slot >= 0) deadlines.remove(this);
    this.body = null;
    this.message = null;
  }
}
