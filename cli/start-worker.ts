// `switchyard worker`: wires the worker engine, its two Redis connections and its admin port.
import type { LoadedApp } from '../shared/call/app';
import type { Config } from './config';
import { log, redactUrl } from '../shared/log';
import { recorders } from '../shared/ops/metrics';
import { connectQuietly, createRedis } from '../shared/store/redis';
import { Queues } from '../shared/store/queues';
import { createWorker, type Worker } from '../worker';
import { agreeOrExit, agreeOrStop } from './partitions';
import { startAdmin, type StartedAdmin } from './ports';
import type { RunningPart } from './running-part';

/** Starts claiming (after the admin port is bound). Without `admin`, starts its own admin port. */
export async function startWorker(config: Config, app: LoadedApp, admin?: StartedAdmin): Promise<RunningPart & { worker: Worker }> {
  const ownAdmin = !admin;
  const { server: adminServer, port: adminPort } = admin ?? (await startAdmin(config));
  const redis = createRedis(config.redis, 'worker');
  const blocking = createRedis(config.redis, 'blocking');
  const queues = new Queues(redis, config.prefix, config.partitions);
  const [up] = await Promise.all([connectQuietly(redis), connectQuietly(blocking)]);
  const undo = async (): Promise<void> => {
    if (ownAdmin) await adminServer.stop();
    redis.disconnect();
    blocking.disconnect();
  };
  if (up) await agreeOrStop(queues, undo, config.redis);
  else {
    redis.once('ready', () => void agreeOrExit(queues, config.redis));
    log.warn(
      { event: 'redis_unavailable', role: 'worker', redis: redactUrl(config.redis) },
      `redis at ${redactUrl(config.redis)} is not answering; claiming starts when it does`,
    );
  }
  const metrics = adminServer.metrics;
  const jobCount = recorders((levelAndOutcome) => {
    const [level, outcome] = levelAndOutcome.split(' ');
    return metrics.jobs.recorder({ level, outcome });
  });
  const jobSeconds = recorders((level) => metrics.jobSeconds.recorder({ level }));
  const worker = createWorker({
    queues,
    blocking,
    redisUrl: config.redis,
    app,
    concurrency: config.concurrency,
    reserve: config.reserve,
    weights: config.weights,
    strict: config.strict,
    groupConcurrency: config.groupConcurrency,
    groupRate: config.groupRate,
    capacity: config.capacity,
    leaseMs: config.leaseMs,
    attempts: config.attempts,
    backoffMs: config.backoffMs,
    deadMax: config.deadMax,
    jobTimeoutMs: config.jobTimeoutMs,
    keepDoneMs: config.keepDoneMs,
    levels: config.levels,
    debug: config.debug,
    traceAsChild: config.otelParent,
    observe: (job, outcome, ms) => {
      jobCount(`${job.level} ${outcome}`)();
      jobSeconds(String(job.level))(ms / 1000);
    },
  });
  metrics.runningNow = () => worker.status().running;
  adminServer.addReadiness('worker', () => {
    const status = worker.status();
    return { ready: status.claiming && redis.status === 'ready', detail: { ...status, redis: redis.status } };
  });
  worker.start();
  return {
    worker,
    port: 0,
    adminPort,
    async stop() {
      const { finished, handedBack } = await worker.stop(config.graceMs);
      if (ownAdmin) await adminServer.stop();
      redis.disconnect();
      log.info(
        { event: 'shutdown', part: 'worker', worker: worker.id, finished, handedBack },
        finished
          ? 'worker stopped: every running job finished'
          : `worker stopped: grace period over, ${handedBack} unfinished job(s) handed back to their queues`,
      );
    },
  };
}
