// The admin HTTP port of every process: /healthz (alive), /readyz (can do its job), /metrics.
// Bound before the process registers anywhere: a port already taken stops it with nothing
// left behind in Redis.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Route } from './dashboard';
import { Metrics } from './metrics';

export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

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
  const server = http.createServer((req, res) => {
    const send = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return send(200, '{"status":"ok"}');
    if (path === '/readyz') {
      const r = readiness();
      return send(r.ready ? 200 : 503, JSON.stringify(r));
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => send(200, text, metrics.registry.contentType),
        (err: Error) => send(500, err.message, 'text/plain'),
      );
      return;
    }
    for (const route of routes) if (route(req, res, path)) return;
    send(404, '{"error":"not found: try /healthz, /readyz or /metrics"}');
  });
  return {
    metrics,
    addReadiness: (name, check) => void parts.set(name, check),
    addRoute: (route) => void routes.push(route),
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
