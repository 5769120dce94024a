// `switchyard gateway`: wires the gRPC gateway, its Redis enqueuer and its admin port.
import { createGateway } from '../server/gateway';
import { QueueEnqueuer } from '../server/queue-enqueuer';
import type { RpcServiceOptions } from '../server/rpc-service';
import { createAdminServer, recorders, type Metrics } from '../shared/ops/admin';
import type { LoadedApp } from '../shared/call/app';
import type { Config } from '../shared/ops/config';
import { connectQuietly, createRedis } from '../shared/store/redis';
import { Store } from '../shared/store/store';

export interface RunningPart {
  port: number;
  adminPort: number;
  stop(): Promise<void>;
}

export async function startGateway(config: Config, app: LoadedApp): Promise<RunningPart> {
  const redis = createRedis(config.redis, 'gateway');
  if (!(await connectQuietly(redis))) {
    process.stderr.write(`switchyard gateway: redis at ${redactUrl(config.redis)} is not answering; sync calls work, async calls answer 503 until it does\n`);
  }
  const store = new Store(redis, config.prefix);
  let serving = false;
  const admin = createAdminServer(config.adminPort, config.host, () => ({
    ready: serving && redis.status === 'ready',
    detail: { serving, redis: redis.status },
  }));
  const gateway = createGateway({
    app,
    queue: new QueueEnqueuer(store, { capacity: config.capacity, discardThreshold: config.discardThreshold }),
    host: config.host,
    port: config.port,
    defaultTimeoutMs: config.timeoutMs,
    maxParamsBytes: config.maxParamsBytes,
    maxBodyBytes: config.maxBodyBytes,
    debug: config.debug,
    token: config.token,
    tls: config.tlsCert && config.tlsKey ? { cert: config.tlsCert, key: config.tlsKey, ca: config.tlsCa } : undefined,
    observe: observeCalls(admin.metrics),
  });
  const port = await gateway.start();
  const adminPort = await admin.start();
  serving = true;
  return {
    port,
    adminPort,
    async stop() {
      serving = false;
      await gateway.stop(config.graceMs);
      await admin.stop();
      redis.disconnect();
    },
  };
}

/** Per-call metrics: the recorders of each kind and status are resolved once. */
function observeCalls(metrics: Metrics): NonNullable<RpcServiceOptions['observe']> {
  const kinds = ['sync', 'async', 'invalid'] as const;
  const durations = Object.fromEntries(kinds.map((kind) => [kind, metrics.callSeconds.recorder({ kind })])) as Record<(typeof kinds)[number], (s: number) => void>;
  const counters = Object.fromEntries(kinds.map((kind) => [kind, recorders((status) => metrics.calls.recorder({ kind, status }))])) as Record<(typeof kinds)[number], (status: string) => () => void>;
  return (kind, status, startedAt) => {
    counters[kind](String(status))();
    durations[kind]((performance.now() - startedAt) / 1000);
  };
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
