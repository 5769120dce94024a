// Redis connections: a single server, a Sentinel-watched master, or a Cluster, all through
// ioredis' own support (no discovery of our own). Commands never queue up while Redis is away
// (no unbounded buffering): they fail at once, and the caller answers 503 or waits and tries
// again; the connection finds the master again by itself after a failover.
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { log } from '../log';

/** A connection to one deployment's Redis, whatever its topology. */
export type RedisClient = Redis | Cluster;

/** gateway: enqueues; worker: claims and settles; blocking: waits for work; lease: the renewal thread; cli: one-shot commands. */
export type ConnectionRole = 'gateway' | 'worker' | 'blocking' | 'lease' | 'cli';

interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; username?: string; password?: string; tls: boolean }
  | { kind: 'cluster'; nodes: HostPort[]; username?: string; password?: string; tls: boolean };

const SCHEMES = 'redis://, rediss://, redis+sentinel://host:port[,host:port…]/<master-name> or redis+cluster://host:port[,host:port…] (rediss+… for TLS)';

/** Reads a --redis URL; throws an Error saying what is wrong with it. */
export function parseRedisUrl(text: string): RedisTarget {
  const m = /^(rediss?)(\+sentinel|\+cluster)?:\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?$/.exec(text);
  if (!m || /\s/.test(text)) throw new Error(`a Redis URL: ${SCHEMES}`);
  const [, scheme, topology, userinfo, hosts, pathPart = ''] = m;
  if (!topology) return { kind: 'single', url: text };
  const tls = scheme === 'rediss';
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    username = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon)) || undefined;
    password = colon === -1 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
  }
  const addresses = hosts.split(',').map((address) => {
    const hp = /^([^:]+|\[[^\]]+\]):(\d{1,5})$/.exec(address);
    if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) throw new Error(`host:port pairs separated by commas (got ${JSON.stringify(address)})`);
    return { host: hp[1].replace(/^\[|\]$/g, ''), port: Number(hp[2]) };
  });
  if (topology === '+sentinel') {
    const name = decodeURIComponent(pathPart.slice(1));
    if (!name) throw new Error('a Sentinel URL ending in /<master-name>, e.g. redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster');
    return { kind: 'sentinel', sentinels: addresses, name, username, password, tls };
  }
  if (pathPart !== '' && pathPart !== '/') throw new Error('a Cluster URL without a path (a cluster has no database number)');
  return { kind: 'cluster', nodes: addresses, username, password, tls };
}

export function createRedis(url: string, role: ConnectionRole): RedisClient {
  const target = parseRedisUrl(url);
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    // Reconnect forever, quickly at first, at most every 1 s.
    retryStrategy: role === 'cli' ? () => null : (times) => Math.min(50 * times, 1000),
    // A master demoted by a failover answers writes with READONLY: reconnect, to the new master.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
    connectionName: `switchyard-${role}`,
  };
  if (role !== 'blocking') options.commandTimeout = role === 'worker' || role === 'cli' ? 5000 : 2000;
  let redis: RedisClient;
  if (target.kind === 'single') {
    // Calls arriving in one turn of the event loop share one write to Redis.
    redis = new Redis(url, { ...options, enableAutoPipelining: role === 'gateway' });
  } else if (target.kind === 'sentinel') {
    redis = new Redis({
      ...options,
      enableAutoPipelining: role === 'gateway',
      sentinels: target.sentinels,
      name: target.name,
      username: target.username,
      password: target.password,
      ...(target.tls && { tls: {}, enableTLSForSentinelMode: true }),
      sentinelRetryStrategy: role === 'cli' ? () => null : (times) => Math.min(100 * times, 1000),
    });
  } else {
    const { retryStrategy: _nodeRetry, enableOfflineQueue: _offline, ...nodeOptions } = options;
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: role === 'gateway',
      scaleReads: 'master',
      clusterRetryStrategy: role === 'cli' ? () => null : (times) => Math.min(100 * times, 1000),
      redisOptions: { ...nodeOptions, username: target.username, password: target.password, ...(target.tls && { tls: {} }) },
    };
    redis = new Cluster(target.nodes, clusterOptions);
  }
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
export async function connectQuietly(redis: RedisClient, waitMs = 2000): Promise<boolean> {
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
