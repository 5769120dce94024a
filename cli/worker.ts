// `switchyard worker`: wires the worker engine, its two Redis connections and its admin port.
import { createAdminServer, recorders } from '../shared/ops/admin';
import type { LoadedApp } from '../shared/call/app';
import type { Config } from '../shared/ops/config';
import { connectQuietly, createRedis } from '../shared/store/redis';
import { Store } from '../shared/store/store';
import { Worker } from '../worker/worker';
import { redactUrl, type RunningPart } from './gateway';

export async function startWorker(config: Config, app: LoadedApp, adminHost = '0.0.0.0'): Promise<RunningPart & { worker: Worker }> {
  const redis = createRedis(config.redis, 'worker');
  const blocking = createRedis(config.redis, 'blocking');
  const [up] = await Promise.all([connectQuietly(redis), connectQuietly(blocking)]);
  if (!up) process.stderr.write(`switchyard worker: redis at ${redactUrl(config.redis)} is not answering; claiming starts when it does\n`);
  const store = new Store(redis, config.prefix);
  let worker: Worker | undefined;
  const admin = createAdminServer(config.adminPort, adminHost, () => {
    const status = worker?.status();
    return { ready: !!status && status.claiming && redis.status === 'ready', detail: { ...status, redis: redis.status } };
  });
  const jobCount = recorders((levelAndOutcome) => {
    const [level, outcome] = levelAndOutcome.split(' ');
    return admin.metrics.jobs.recorder({ level, outcome });
  });
  const jobSeconds = recorders((level) => admin.metrics.jobSeconds.recorder({ level }));
  worker = new Worker({
    store,
    blocking,
    app,
    concurrency: config.concurrency,
    reserve: config.reserve,
    weights: config.weights,
    strict: config.strict,
    capacity: config.capacity,
    leaseMs: config.leaseMs,
    attempts: config.attempts,
    backoffMs: config.backoffMs,
    deadMax: config.deadMax,
    debug: config.debug,
    observe: (job, outcome, ms) => {
      jobCount(`${job.level} ${outcome}`)();
      jobSeconds(String(job.level))(ms / 1000);
    },
  });
  worker.start();
  const adminPort = await admin.start();
  const w = worker;
  return {
    worker: w,
    port: 0,
    adminPort,
    async stop() {
      const { finished, handedBack } = await w.stop(config.graceMs);
      if (!finished) process.stderr.write(`switchyard worker: grace period over, ${handedBack} unfinished job(s) handed back to their queues\n`);
      await admin.stop();
      redis.disconnect();
    },
  };
}
