// What the integration tests need to drive the store as a gateway and a worker do: an async call
// parsed exactly as the gateway parses it, and a redis-server of the suite's own with one client.
import Redis from 'ioredis';
import { parseParams, type CallRequest } from '../../shared/call/params';
import { startRedis, type TestRedis } from './redis';

export const PARAMS_LIMITS = { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 20 };

/** A `reply: false` call, POST by default, with `detail` merged into its queue_detail. */
export function asyncCall(
  url: string,
  level: 1 | 2,
  policy: 'execute' | 'last' | 'discard',
  detail: Record<string, unknown> = {},
  content: unknown = null,
): CallRequest {
  return parseParams(JSON.stringify({ url, method: 'POST', reply: false, content, queue_detail: { level, limit_policy: policy, ...detail } }), PARAMS_LIMITS);
}

/** Starts a redis-server for the suite (beforeAll) with a client on it, and stops both (afterAll). */
export function suiteRedis(): { readonly server: TestRedis; readonly redis: Redis } {
  let server: TestRedis | undefined;
  let redis: Redis | undefined;
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.close();
  });
  return {
    get server() {
      return server!;
    },
    get redis() {
      return redis!;
    },
  };
}
