// The admin HTTP port of every process: /healthz (alive), /readyz (can do its job), /metrics.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

export interface AdminServer {
  readonly metrics: Metrics;
  start(): Promise<number>;
  stop(): Promise<void>;
}

type Labels = Record<string, string>;

/**
 * Counters and histograms for the per-call and per-job paths. prom-client hashes and validates
 * the label set on every inc/observe (about 1 µs, a few per cent of a sync call); here a label
 * set is resolved once into a recorder, and recording is an array increment. The registry
 * reads them at scrape time through the same get() shape as prom-client's own metrics.
 */
class LightMetric {
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { labels: Labels; counts: Float64Array; sum: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly bounds: readonly number[] = [],
  ) {}

  protected seriesFor(labels: Labels): { counts: Float64Array; sum: number } {
    const id = JSON.stringify(labels);
    let entry = this.series.get(id);
    if (!entry) this.series.set(id, (entry = { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0 }));
    return entry;
  }

  protected bucketOf(value: number): number {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    return i;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> } {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> = [];
    for (const { labels, counts, sum } of this.series.values()) {
      if (this.type === 'counter') {
        values.push({ labels, value: counts[0] });
        continue;
      }
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += counts[i];
        values.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      cumulative += counts[this.bounds.length];
      values.push({ labels: { ...labels, le: '+Inf' }, value: cumulative, metricName: `${this.name}_bucket` });
      values.push({ labels, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: cumulative, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

export class LightCounter extends LightMetric {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  /** The recorder for one label set: keep it, call it per event. */
  recorder(labels: Labels): () => void {
    const entry = this.seriesFor(labels);
    return () => {
      entry.counts[0] += 1;
    };
  }
}

export class LightHistogram extends LightMetric {
  constructor(name: string, help: string, bounds: readonly number[]) {
    super(name, help, 'histogram', bounds);
  }
  recorder(labels: Labels): (value: number) => void {
    const entry = this.seriesFor(labels);
    return (value) => {
      entry.counts[this.bucketOf(value)] += 1;
      entry.sum += value;
    };
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly calls = new LightCounter('switchyard_calls_total', 'Calls answered by the gateway');
  readonly callSeconds = new LightHistogram('switchyard_call_seconds', 'Time to answer a call', [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  readonly jobs = new LightCounter('switchyard_jobs_total', 'Jobs run by this worker, by outcome');
  readonly jobSeconds = new LightHistogram('switchyard_job_seconds', 'Run time of a job', [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30]);
  readonly running = new Gauge({ name: 'switchyard_jobs_running', help: 'Jobs running in this worker', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const metric of [this.calls, this.callSeconds, this.jobs, this.jobSeconds]) {
      this.registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
    }
  }
}

/** Memoises one recorder per label combination, looked up by a cheap string key. */
export function recorders<R>(make: (key: string) => R): (key: string) => R {
  const cache = new Map<string, R>();
  return (key) => {
    let r = cache.get(key);
    if (r === undefined) cache.set(key, (r = make(key)));
    return r;
  };
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
