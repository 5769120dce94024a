// The admin HTTP port of every process: /healthz (alive), /readyz (can do its job), /metrics.
// Bound before the process registers anywhere: a port already taken stops it with nothing
// left behind in Redis. Nothing a client sends here may end the process: every request runs
// inside one guard (an unexpected error answers 500 and is logged), and malformed HTTP is
// answered 400 by the server itself.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { log } from '../log';
import { Metrics } from './metrics';

export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

export interface AdminRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The request target up to its `?`, not decoded. */
  path: string;
  /** The request target after its `?` ('' when none), not decoded. */
  query: string;
  /** The --host the port is bound to (a Host header naming it is this port's). */
  bindHost: string;
}

/** Answers a request if it is the route's: true when answered, a promise while answering, false when not its own. */
export type Route = (request: AdminRequest) => boolean | Promise<void>;

export interface AdminServer {
  readonly metrics: Metrics;
  /** Adds a part's readiness: the process is ready when every part is. */
  addReadiness(name: string, check: () => Readiness): void;
  /** Adds pages of the admin port (the dashboard). */
  addRoute(route: Route): void;
  /** Binds; resolves to the bound port (useful with port 0). */
  start(): Promise<number>;
  stop(): Promise<void>;
}

const JSON_TYPE = 'application/json';

/** What the server answers to bytes that are not HTTP it can parse (before any route sees them). */
function answerMalformed(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset or a socket already closing has nobody to answer.
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request not received in time']
        : [400, 'malformed HTTP request'];
  const body = JSON.stringify({ error: reason });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: ${JSON_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export function createAdminServer(port: number, host: string): AdminServer {
  const metrics = new Metrics();
  const parts = new Map<string, () => Readiness>();
  const routes: Route[] = [];
  const readiness = (): { ready: boolean } & Record<string, unknown> => {
    const report: { ready: boolean } & Record<string, unknown> = { ready: parts.size > 0 };
    for (const [name, check] of parts) {
      const r = check();
      report.ready &&= r.ready;
      report[name] = { ready: r.ready, ...r.detail };
    }
    return report;
  };

  const serve = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const send = (status: number, body: string, type = JSON_TYPE): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const target = req.url ?? '/';
    const mark = target.indexOf('?');
    const path = mark === -1 ? target : target.slice(0, mark);
    const query = mark === -1 ? '' : target.slice(mark + 1);
    if (path === '/healthz') return send(200, '{"status":"ok"}');
    if (path === '/readyz') {
      const r = readiness();
      return send(r.ready ? 200 : 503, JSON.stringify(r));
    }
    if (path === '/metrics') {
      let text: string;
      try {
        text = await metrics.registry.metrics();
      } catch (err) {
        log.warn({ event: 'metrics_failed', error: (err as Error).message }, `admin port: /metrics could not be collected: ${(err as Error).message}`);
        return send(503, '{"error":"metrics could not be collected; the process logged why"}');
      }
      return send(200, text, metrics.registry.contentType);
    }
    for (const route of routes) {
      const handled = route({ req, res, path, query, bindHost: host });
      if (handled === false) continue;
      if (handled !== true) await handled;
      return;
    }
    send(404, '{"error":"not found: try /healthz, /readyz or /metrics"}');
  };

  const server = http.createServer((req, res) => {
    serve(req, res).catch((err: Error) => {
      log.error(
        { event: 'admin_request_failed', method: req.method, path: (req.url ?? '').slice(0, 200), error: err?.stack ?? String(err) },
        `admin port: ${req.method} request failed: ${err?.message ?? String(err)}`,
      );
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(500, { 'content-type': JSON_TYPE, 'cache-control': 'no-store' });
        res.end('{"error":"internal error in the admin port; the process logged it"}');
      }
    });
  });
  server.on('clientError', answerMalformed);
  // CONNECT (a proxy tunnel) is no request of ours: say so rather than drop the connection.
  server.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy());
    const body = '{"error":"CONNECT is not served here"}';
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\ncontent-type: ${JSON_TYPE}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  });

  return {
    metrics,
    addReadiness: (name, check) => void parts.set(name, check),
    addRoute: (route) => void routes.push(route),
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          // After the bind, a server error (e.g. out of file descriptors on accept) is logged, not thrown.
          server.on('error', (err) => log.error({ event: 'admin_port_error', error: err.message }, `admin port: ${err.message}`));
          resolve((server.address() as AddressInfo).port);
        });
      }),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
