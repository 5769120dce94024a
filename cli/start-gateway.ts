// `switchyard gateway`: wires the gRPC gateway, its Redis enqueuer and its admin port.
import { createGateway } from '../server/gateway';
import { QueueEnqueuer } from '../server/queue-enqueuer';
import type { RpcServiceOptions } from '../server/rpc-service';
import type { LoadedApp } from '../shared/call/app';
import type { Config } from './config';
import { log, redactUrl } from '../shared/log';
import { dashboardRoute } from '../server/dashboard/route';
import { recorders, registerGroupGauges, registerQueueGauges, type Metrics } from '../shared/ops/metrics';
import { readDeploymentGroups } from '../shared/ops/groups';
import { Cluster } from 'ioredis';
import { connectQuietly, createRedis, type RedisClient } from '../shared/store/redis';
import { Queues } from '../shared/store/queues';
import { agreeOrExit, agreeOrStop } from './partitions';
import { isAddressInUse, portTaken, startAdmin, type StartedAdmin } from './ports';
import type { RunningPart } from './running-part';

/** Binds the gRPC port (after the admin port), then serves. Without `admin`, starts its own admin port. */
export async function startGateway(config: Config, app: LoadedApp, admin?: StartedAdmin): Promise<RunningPart> {
  const ownAdmin = !admin;
  const { server: adminServer, port: adminPort } = admin ?? (await startAdmin(config));
  const redis = createRedis(config.redis, 'gateway');
  const queues = new Queues(redis, config.prefix, config.partitions);
  // Connecting starts before the port binds; an async call that arrives first waits for the
  // connection within its own deadline (server/queue-enqueuer.ts) rather than failing.
  const connected = connectQuietly(redis);
  let serving = false;
  adminServer.addReadiness('gateway', () => ({ ready: serving && redis.status === 'ready', detail: { serving, redis: redis.status } }));
  registerQueueGauges(adminServer.metrics, () => queues.gauges());
  registerGroupGauges(adminServer.metrics, () => readDeploymentGroups(queues));
  adminServer.addRoute(dashboardRoute({ queues, capacity: config.capacity, adminToken: config.adminToken }));
  const gateway = createGateway({
    app,
    queue: new QueueEnqueuer(queues, {
      capacity: config.capacity,
      discardThreshold: config.discardThreshold,
      replicasAck: config.replicasAck,
      replicasTimeoutMs: config.replicasTimeoutMs,
    }),
    host: config.host,
    port: config.port,
    defaultTimeoutMs: config.timeoutMs,
    maxParamsBytes: config.maxParamsBytes,
    maxBodyBytes: config.maxBodyBytes,
    debug: config.debug,
    token: config.token,
    tls: config.tlsCert && config.tlsKey ? { cert: config.tlsCert, key: config.tlsKey, ca: config.tlsCa } : undefined,
    observe: observeCalls(adminServer.metrics),
  });
  let port: number;
  try {
    port = await gateway.start();
  } catch (err) {
    redis.disconnect();
    if (ownAdmin) await adminServer.stop();
    throw isAddressInUse(err) ? portTaken('--port', config.host, config.port) : err;
  }
  if (await connected) {
    await agreeOrStop(
      queues,
      async () => {
        await gateway.stop(0);
        if (ownAdmin) await adminServer.stop();
        redis.disconnect();
      },
      config.redis,
    );
  } else {
    redis.once('ready', () => void agreeOrExit(queues, config.redis));
    log.warn(
      { event: 'redis_unavailable', role: 'gateway', redis: redactUrl(config.redis) },
      `redis at ${redactUrl(config.redis)} is not answering; sync calls work, async calls answer 503 until it does`,
    );
  }
  if (config.replicasAck > 0) {
    const check = (): void => void warnWithoutReplicas(redis, config.replicasAck);
    if (redis.status === 'ready') check();
    else redis.once('ready', check);
  }
  serving = true;
  return {
    port,
    adminPort,
    async stop() {
      serving = false;
      const inFlight = gateway.inFlight();
      await gateway.stop(config.graceMs);
      if (ownAdmin) await adminServer.stop();
      redis.disconnect();
      log.info(
        { event: 'shutdown', part: 'gateway', inFlight, unanswered: gateway.inFlight() },
        `gateway stopped: ${inFlight} call(s) were in flight, ${gateway.inFlight()} left unanswered`,
      );
    },
  };
}

/**
 * With --replicas-ack N, every async call waits for N replicas: a master with fewer answers
 * every one of them 503. Said once at start, per master, rather than only call by call.
 */
async function warnWithoutReplicas(redis: RedisClient, needed: number): Promise<void> {
  const masters = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of masters) {
    try {
      const info = await node.info('replication');
      const connected = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
      if (connected >= needed) continue;
      const where = node.options.sentinels ? `Sentinel's ${node.options.name ?? 'mymaster'}` : `${node.options.host ?? '?'}:${node.options.port ?? '?'}`;
      log.warn(
        { event: 'replicas_missing', master: where, needed, connected },
        `--replicas-ack ${needed}, but the master ${where} has ${connected} replica(s) connected: async calls will answer 503 until enough replicas are`,
      );
    } catch {
      // Redis not answering is said by redis_unavailable; the calls say the rest.
    }
  }
}

/** Per-call metrics: the recorders of each kind and status are resolved once. */
function observeCalls(metrics: Metrics): NonNullable<RpcServiceOptions['observe']> {
  const kinds = ['sync', 'async', 'invalid'] as const;
  const durations = Object.fromEntries(kinds.map((kind) => [kind, metrics.callSeconds.recorder({ kind })])) as Record<
    (typeof kinds)[number],
    (s: number) => void
  >;
  const counters = Object.fromEntries(kinds.map((kind) => [kind, recorders((status) => metrics.calls.recorder({ kind, status }))])) as Record<
    (typeof kinds)[number],
    (status: string) => () => void
  >;
  return (kind, status, startedAt) => {
    counters[kind](String(status))();
    durations[kind]((performance.now() - startedAt) / 1000);
  };
}
