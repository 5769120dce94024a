// Sync path, side by side in one run: (a) the gateway running the demo's /noop route
// in-process, (a') the gateway running a one-middleware app (the gateway's own cost, without
// the demo's router), (b) a bare grpc-js echo (the ceiling), (c) Koa over HTTP/1.1 keep-alive.
// gRPC load from h2load (a Node client saturates first), HTTP load from autocannon.
import autocannon from 'autocannon';
import { call, closeClients } from '../client';
import { h2load, median, startNode, startRedisServer, type LoadResult } from './lib';

export interface SyncResults {
  /** h2load connections × streams per connection; HTTP uses `inFlight` connections. */
  layouts: Array<{ clients: number; streams: number; gateway: LoadResult[]; echo: LoadResult[] }>;
  /** The gateway with bench/minimal-app (one middleware, no router), 1 connection × inFlight. */
  minimal: LoadResult[];
  http: LoadResult[];
  inFlight: number;
}

const PARAMS = '{"url":"/noop","method":"GET"}';

async function httpLoad(port: number, connections: number, seconds: number): Promise<LoadResult> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}/noop`, connections, pipelining: 1, duration: seconds });
  return { rps: result.requests.average, p50ms: result.latency.p50, p99ms: result.latency.p99, failed: result.errors + result.non2xx };
}

export async function benchSync(options: { rounds: number; requests: number; inFlight: number }): Promise<SyncResults> {
  const redis = await startRedisServer();
  const gateway = await startNode(
    ['bin/switchyard.js', 'gateway', '--app', 'dist/examples/demo-app.js', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--redis', redis.url],
    'gateway ready',
  );
  const minimal = await startNode(
    ['bin/switchyard.js', 'gateway', '--app', 'dist/bench/minimal-app.js', '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--redis', redis.url],
    'gateway ready',
  );
  const echo = await startNode(['dist/bench/echo-server.js'], 'echo ready');
  const koa = await startNode(['dist/bench/koa-http-server.js'], 'koa ready');
  try {
    const gatewayPort = Number(gateway.fields.port);
    const check = await call('/noop', { address: `127.0.0.1:${gatewayPort}` });
    if (check.status !== 200) throw new Error(`gateway answered ${check.raw}`);
    closeClients();
    const seconds = Math.max(3, Math.round(options.requests / 25_000));
    const echoPort = Number(echo.fields.port);
    // One channel multiplexing 64 calls (how a grpc-js client talks), and 4 × 16.
    const results: SyncResults = {
      layouts: [
        { clients: 1, streams: options.inFlight, gateway: [], echo: [] },
        { clients: 4, streams: options.inFlight / 4, gateway: [], echo: [] },
      ],
      minimal: [],
      http: [],
      inFlight: options.inFlight,
    };
    const minimalPort = Number(minimal.fields.port);
    h2load(minimalPort, PARAMS, { clients: 1, streams: options.inFlight, requests: 20_000 });
    // Warm-up: JIT and connection set-up out of the measured rounds.
    for (const { clients, streams } of results.layouts) {
      h2load(gatewayPort, PARAMS, { clients, streams, requests: 20_000 });
      h2load(echoPort, PARAMS, { clients, streams, requests: 20_000 });
    }
    await httpLoad(Number(koa.fields.port), options.inFlight, 2);

    for (let round = 0; round < options.rounds; round++) {
      for (const layout of results.layouts) {
        const load = { clients: layout.clients, streams: layout.streams, requests: options.requests };
        // Alternate which runs first: a slow spell of the shared machine then hits both sides.
        if (round % 2 === 1) layout.echo.push(h2load(echoPort, PARAMS, load));
        layout.gateway.push(h2load(gatewayPort, PARAMS, load));
        if (round % 2 === 0) layout.echo.push(h2load(echoPort, PARAMS, load));
        process.stderr.write(
          `sync round ${round + 1}, ${layout.clients}×${layout.streams}: gateway ${Math.round(layout.gateway[round].rps)}/s, echo ${Math.round(layout.echo[round].rps)}/s\n`,
        );
        if (layout.clients === 1) {
          results.minimal.push(h2load(minimalPort, PARAMS, load));
          process.stderr.write(`sync round ${round + 1}: gateway with the one-middleware app ${Math.round(results.minimal[round].rps)}/s\n`);
        }
      }
      results.http.push(await httpLoad(Number(koa.fields.port), options.inFlight, seconds));
      process.stderr.write(`sync round ${round + 1}: http ${Math.round(results.http[round].rps)}/s\n`);
    }
    return results;
  } finally {
    await Promise.all([gateway.stop(), minimal.stop(), echo.stop(), koa.stop()]);
    redis.stop();
  }
}

export function syncTable(r: SyncResults): string {
  const rps = (runs: LoadResult[]): number => median(runs.map((x) => x.rps));
  const row = (name: string, runs: LoadResult[]): string =>
    `| ${name} | ${Math.round(rps(runs))} | ${median(runs.map((x) => x.p50ms)).toFixed(2)} | ${median(runs.map((x) => x.p99ms)).toFixed(2)} | ${runs.map((x) => Math.round(x.rps)).join(', ')} | ${runs.reduce((n, x) => n + x.failed, 0)} |`;
  const lines = [`| ${r.inFlight} calls in flight | calls/s (median) | p50 ms | p99 ms | each round | failed |`, '|---|---|---|---|---|---|'];
  for (const l of r.layouts) {
    lines.push(row(`(a) gateway, demo /noop in-process — h2load ${l.clients} conn × ${l.streams} streams`, l.gateway));
    if (l.clients === 1) lines.push(row(`(a') gateway, one-middleware Koa app (no router) — h2load 1 conn × ${l.streams} streams`, r.minimal));
    lines.push(row(`(b) bare grpc-js echo (proto-loader) — h2load ${l.clients} conn × ${l.streams} streams`, l.echo));
  }
  lines.push(row(`(c) Koa over HTTP/1.1 keep-alive — autocannon ${r.inFlight} connections`, r.http));
  lines.push('');
  for (const l of r.layouts) {
    lines.push(
      `${l.clients} × ${l.streams}: gateway / bare echo = **${(rps(l.gateway) / rps(l.echo)).toFixed(3)}** (target ≥ 1.0); gateway / HTTP keep-alive = **${(rps(l.gateway) / rps(r.http)).toFixed(2)}**`,
    );
  }
  const one = r.layouts.find((l) => l.clients === 1)!;
  lines.push(
    `1 × ${one.streams}: gateway with the one-middleware app / bare echo = **${(rps(r.minimal) / rps(one.echo)).toFixed(3)}** — the gateway's own cost without the demo app's routing`,
  );
  return lines.join('\n');
}
