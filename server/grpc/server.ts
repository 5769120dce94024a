// A gRPC server on node:http2: checks each stream's headers (method, content-type, path,
// bearer token, encoding, deadline) before its body is read, then runs a GrpcCall. Sessions
// are tracked for a graceful stop: GOAWAY, the calls in flight answer, then the rest is closed.
import { timingSafeEqual } from 'node:crypto';
import http2, { constants, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { log } from '../../shared/log';
import { GrpcCall, SessionBudget, type Method } from './call';
import { ACCEPT_ENCODING, percentEncode, Status, trailersOnly } from './status';
import { parseGrpcTimeout } from './timeout';

export interface GrpcServerOptions {
  /** Method path (`/package.Service/Method`) → method. */
  methods: Map<string, Method<unknown, unknown>>;
  /** The largest request message, compressed or decompressed; larger ones are refused from their length prefix. */
  maxMessageBytes: number;
  /** Calls of methods with `auth` must carry `authorization: Bearer <token>`. */
  token?: string;
  /** PEM contents; `ca` set: clients must present a certificate it signed. */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** Streams one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams?: number;
  /** Request bytes one connection's calls may hold at once; a message that would pass it is refused from its prefix. */
  sessionBufferBytes?: number;
  /** node:http2's per-session memory limit in MB (header tables, data queued to send): new streams are refused above it. */
  maxSessionMemoryMb?: number;
}

export interface GrpcServer {
  /** Binds; resolves to the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** GOAWAY to every connection; calls in flight have up to graceMs to answer, then connections are closed. */
  shutdown(graceMs: number): Promise<void>;
}

export const DEFAULT_MAX_CONCURRENT_STREAMS = 1000;

const BUDGET = Symbol('session budget');
type BudgetedSession = Http2Session & { [BUDGET]: SessionBudget };

/** application/grpc, application/grpc+proto, each possibly with parameters; not application/grpc+json. */
function isGrpcContentType(value: string | undefined): boolean {
  if (value === undefined || !value.startsWith('application/grpc')) return false;
  const rest = value.slice('application/grpc'.length);
  return rest === '' || rest === '+proto' || rest.startsWith(';') || rest.startsWith('+proto;');
}

function tokenCheck(token: string | undefined): ((authorization: string | undefined) => boolean) | null {
  if (token === undefined) return null;
  const expected = Buffer.from(`Bearer ${token}`);
  return (authorization) => {
    const given = Buffer.from(authorization ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
}

/** Answers with headers alone, before the body is read, and stops a client still sending. */
function refuse(stream: ServerHttp2Stream, headers: Record<string, string | number>): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond(headers, { endStream: true });
  if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
}

function onStreamError(this: ServerHttp2Stream, err: Error): void {
  log.debug({ event: 'grpc_stream', err: err.message }, `gRPC stream error: ${err.message}`);
}

export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const { methods, maxMessageBytes } = options;
  const authorized = tokenCheck(options.token);
  const sessionBufferBytes = options.sessionBufferBytes ?? Math.max(4 * maxMessageBytes, 64 << 20);
  const settings = { maxConcurrentStreams: options.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS };
  const common = { settings, maxSessionMemory: options.maxSessionMemoryMb ?? 10 };
  const tls = options.tls;
  const server = tls
    ? http2.createSecureServer({
        ...common,
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        requestCert: tls.ca !== undefined,
        rejectUnauthorized: tls.ca !== undefined,
        ALPNProtocols: ['h2'],
      })
    : http2.createServer(common);
  const sessions = new Set<Http2Session>();
  let closing = false;

  server.on('session', (session: Http2Session) => {
    (session as BudgetedSession)[BUDGET] = new SessionBudget(sessionBufferBytes);
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', (err: Error) => log.debug({ event: 'grpc_stream', err: err.message }, `HTTP/2 session error: ${err.message}`));
  });

  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', onStreamError);
    if (headers[':method'] !== 'POST') {
      return refuse(stream, { ':status': 405, allow: 'POST', 'grpc-status': String(Status.UNIMPLEMENTED), 'grpc-message': 'gRPC calls are POST requests' });
    }
    const contentType = headers['content-type'];
    if (!isGrpcContentType(contentType)) {
      const message = percentEncode(`content-type ${contentType ?? '(none)'} is not application/grpc`);
      return refuse(stream, { ':status': 415, 'grpc-status': String(Status.INTERNAL), 'grpc-message': message });
    }
    const path = headers[':path'] as string;
    const method = methods.get(path);
    if (method === undefined) return refuse(stream, trailersOnly(Status.UNIMPLEMENTED, `The server does not implement the method ${path}`));
    const budget = (stream.session as BudgetedSession)[BUDGET];
    if (budget.held >= budget.limit) {
      return refuse(stream, trailersOnly(Status.RESOURCE_EXHAUSTED, `the connection holds more than ${budget.limit} bytes of requests and unread responses`));
    }
    if (closing) return refuse(stream, trailersOnly(Status.UNAVAILABLE, 'the server is shutting down'));
    if (method.auth && authorized !== null && !authorized(headers.authorization)) {
      return refuse(stream, trailersOnly(Status.UNAUTHENTICATED, 'missing or wrong bearer token'));
    }
    const encoding = headers['grpc-encoding'];
    const gzip = encoding === 'gzip';
    if (encoding !== undefined && encoding !== 'identity' && !gzip) {
      return refuse(stream, trailersOnly(Status.UNIMPLEMENTED, `grpc-encoding ${encoding} is not supported (${ACCEPT_ENCODING} are)`));
    }
    const timeout = headers['grpc-timeout'];
    const timeoutMs = timeout === undefined ? Infinity : parseGrpcTimeout(timeout as string);
    if (Number.isNaN(timeoutMs)) return refuse(stream, trailersOnly(Status.INTERNAL, `invalid grpc-timeout ${timeout}`));
    new GrpcCall(stream, headers, method, budget, maxMessageBytes, gzip, timeoutMs);
  });

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          server.on('error', (err) => log.warn({ event: 'grpc_stream', err: err.message }, `gRPC server error: ${err.message}`));
          resolve((server.address() as { port: number }).port);
        });
      });
    },
    async shutdown(graceMs) {
      closing = true;
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      // GOAWAY: the client opens no new stream here; the session closes once its streams have.
      for (const session of sessions) session.close();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([serverClosed, graceOver]);
      clearTimeout(timer);
      for (const session of sessions) session.destroy();
      await serverClosed;
    },
  };
}
