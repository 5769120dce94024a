// The admin HTTP port of every process: /healthz (alive), /readyz (can do its job), /metrics.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

export interface AdminServer {
  readonly metrics: Metrics;
  start(): Promise<number>;
  stop(): Promise<void>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly calls = new Counter({ name: 'switchyard_calls_total', help: 'Calls answered by the gateway', labelNames: ['kind', 'status'], registers: [this.registry] });
  readonly callSeconds = new Histogram({
    name: 'switchyard_call_seconds', help: 'Time to answer a call', labelNames: ['kind'], registers: [this.registry],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
  readonly jobs = new Counter({ name: 'switchyard_jobs_total', help: 'Jobs run by this worker, by outcome', labelNames: ['level', 'outcome'], registers: [this.registry] });
  readonly jobSeconds = new Histogram({
    name: 'switchyard_job_seconds', help: 'Run time of a job', labelNames: ['level'], registers: [this.registry],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
  });
  readonly running = new Gauge({ name: 'switchyard_jobs_running', help: 'Jobs running in this worker', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}

export function createAdminServer(port: number, host: string, readiness: () => Readiness | Promise<Readiness>): AdminServer {
  const metrics = new Metrics();
  const server = http.createServer((req, res) => {
    const send = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return send(200, '{"status":"ok"}');
    if (path === '/readyz') {
      Promise.resolve(readiness()).then(
        (r) => send(r.ready ? 200 : 503, JSON.stringify({ ready: r.ready, ...r.detail })),
        (err: Error) => send(503, JSON.stringify({ ready: false, error: err.message })),
      );
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then((text) => send(200, text, metrics.registry.contentType), (err: Error) => send(500, err.message, 'text/plain'));
      return;
    }
    send(404, '{"error":"not found: try /healthz, /readyz or /metrics"}');
  });
  return {
    metrics,
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
