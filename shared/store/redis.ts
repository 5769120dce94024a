// Redis connections. Commands never queue up while Redis is away (no unbounded buffering):
// they fail at once, and the caller answers 503 or waits and tries again.
import Redis, { type RedisOptions } from 'ioredis';
import { log } from '../ops/log';

/** gateway: enqueues; worker: claims and settles; blocking: waits for work; lease: the renewal thread; cli: one-shot commands. */
export type ConnectionRole = 'gateway' | 'worker' | 'blocking' | 'lease' | 'cli';

export function createRedis(url: string, role: ConnectionRole): Redis {
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    // Reconnect forever, quickly at first, at most every 1 s.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    connectionName: `switchyard-${role}`,
  };
  if (role !== 'blocking') options.commandTimeout = role === 'worker' || role === 'cli' ? 5000 : 2000;
  // Calls arriving in one turn of the event loop share one write to Redis.
  if (role === 'gateway') options.enableAutoPipelining = true;
  if (role === 'cli') options.retryStrategy = () => null;
  const redis = new Redis(url, options);
  // Without a listener ioredis prints every reconnect failure; one line per outage is enough.
  let lost = false;
  redis.on('error', (err: Error) => {
    if (!lost && role !== 'cli') log.warn({ event: 'redis_lost', role, err: { message: err.message } }, `redis (${role}) unavailable: ${err.message}`);
    lost = true;
  });
  redis.on('ready', () => {
    if (lost && role !== 'cli') log.info({ event: 'redis_back', role }, `redis (${role}) connected again`);
    lost = false;
  });
  return redis;
}

/** Connects, but does not throw when Redis is down: the connection keeps retrying by itself. */
export async function connectQuietly(redis: Redis, waitMs = 2000): Promise<boolean> {
  if (redis.status === 'ready') return true;
  const ready = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  redis.connect().catch(() => undefined);
  return ready;
}
