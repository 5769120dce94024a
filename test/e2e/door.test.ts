// The gRPC door (docs/protocol.md, sections 1-3): the bearer token is checked on the headers,
// before a message is read; the receive limit is --max-params plus framing; numbers and strings
// of params are refused at the door when the store could not carry them exactly; and a 503 says
// what is known about the job (not queued, outcome unknown, Redis full) while a gateway that is
// still connecting makes calls wait rather than fail. Real gateways, a real redis-server.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { call, closeClients, rawCall, type Answer } from '../../client';
import { freePort } from '../../cli/free-port';
import { decodeStringField1, encodeStringField1 } from '../../shared/call/wire';
import { keysFor } from '../../shared/store/keys';
import { startDebugRedis, type DebugRedis } from '../helpers/debug-redis';
import { inProcessGateway, killAll, startSwitchyard, waitFor } from '../helpers/processes';
import { uniquePrefix } from '../helpers/redis';
import { expectCleanRedis, failureOf } from '../helpers/check-state';

const APP = path.join(__dirname, '..', 'fixtures', 'recording-app.js');
const TOKEN = 'door-token';
const report = (line: string): void => void process.stderr.write(`[door] ${line}\n`);

let redis: DebugRedis;
beforeAll(async () => {
  redis = await startDebugRedis();
});
afterAll(async () => {
  closeClients();
  await killAll();
  const problems = await failureOf(expectCleanRedis(redis.url));
  await redis.close();
  if (problems) throw problems;
});

/** A client that sends Input bytes as they are (the test builds them once, however large). */
type BytesClient = grpc.Client & {
  handel(input: Buffer, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, output?: string) => void): void;
};
const BytesClient = grpc.makeGenericClientConstructor(
  {
    handel: {
      path: '/rpc.RPCServer/handel',
      requestStream: false,
      responseStream: false,
      requestSerialize: (input: Buffer) => input,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (output: string) => encodeStringField1(output),
      responseDeserialize: (bytes: Buffer) => decodeStringField1(bytes),
    },
  },
  'RPCServer',
);

function sendBytes(client: BytesClient, input: Buffer, metadata = new grpc.Metadata()): Promise<{ code: grpc.status; details: string; content?: string }> {
  return new Promise((resolve) => {
    client.handel(input, metadata, { deadline: Date.now() + 60_000 }, (err, output) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '', content: output }),
    );
  });
}

/** VmRSS and VmHWM (peak) of a process, in MB, from /proc. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

const asyncParams = (detail: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ url: '/record', method: 'POST', reply: false, ...extra, queue_detail: { level: 1, limit_policy: 'execute', ...detail } });

describe('the bearer token (defect 14)', () => {
  test('with --token, 40 unauthenticated 4 MB calls at once are refused on their headers: UNAUTHENTICATED, and the gateway does not buffer them', async () => {
    const gw = await startSwitchyard('gateway', [
      '--app',
      APP,
      '--redis',
      redis.url,
      '--prefix',
      uniquePrefix('door'),
      '--token',
      TOKEN,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
    ]);
    const address = `127.0.0.1:${gw.ready.port}`;
    const pid = gw.child.pid!;
    expect((await call('/ping', { address, token: TOKEN })).status).toBe(200);
    const before = memory(pid);
    // One 4 MB params (under the default --max-params of 4 MB), sent by every call: the test's own memory stays flat.
    const big = encodeStringField1(JSON.stringify({ url: '/ping', method: 'GET', pad: 'x'.repeat(4_000_000) }));
    const client = new BytesClient(address, grpc.credentials.createInsecure()) as unknown as BytesClient;
    let peak = before.rss;
    const sampler = setInterval(() => (peak = Math.max(peak, memory(pid).rss)), 5);
    const wrong = new grpc.Metadata();
    wrong.set('authorization', 'Bearer not-the-token');
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => sendBytes(client, big, i % 2 === 0 ? new grpc.Metadata() : wrong)));
    clearInterval(sampler);
    const after = memory(pid);
    peak = Math.max(peak, after.rss, after.hwm);
    report(
      `40 unauthenticated 4 MB calls: gateway VmRSS ${before.rss.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB (VmHWM ${after.hwm.toFixed(0)} MB), ${after.rss.toFixed(0)} MB after`,
    );
    client.close();
    expect(answers.map((a) => a.code)).toEqual(Array(40).fill(grpc.status.UNAUTHENTICATED));
    expect(peak - before.rss).toBeLessThan(60);
    // The token still opens the door, sync and async; the health service needs none.
    expect((await call('/ping', { address, token: TOKEN })).status).toBe(200);
    expect((await rawCall(asyncParams(), { address, token: TOKEN })).status).toBe(201);
    await expect(call('/ping', { address })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    gw.kill('SIGKILL');
    await gw.exited;
  }, 120_000);
});

describe('the receive limit (defect 14)', () => {
  test('is --max-params plus protobuf framing: a params just over it answers 400 saying so, a larger message RESOURCE_EXHAUSTED before it is read', async () => {
    const gateway = await inProcessGateway(APP, redis.url, uniquePrefix('door'), ['--max-params', '64kb', '--max-body', '32kb']);
    const client = new BytesClient(gateway.address, grpc.credentials.createInsecure()) as unknown as BytesClient;
    try {
      const max = 65_536;
      const paramsOf = (bytes: number): string => {
        const base = JSON.stringify({ url: '/ping', method: 'GET', pad: '' });
        return JSON.stringify({ url: '/ping', method: 'GET', pad: 'x'.repeat(bytes - base.length) });
      };
      const outcome = async (bytes: number): Promise<string> => {
        const a = await sendBytes(client, encodeStringField1(paramsOf(bytes)));
        return a.code === grpc.status.OK ? JSON.parse(a.content!).status_code : grpc.status[a.code];
      };
      const seen: Record<number, string> = {};
      for (const bytes of [max, max + 1, max + 2, max + 3, max * 2, max * 16]) seen[bytes] = await outcome(bytes);
      report(
        `--max-params 64kb: params of ${Object.entries(seen)
          .map(([b, o]) => `${b} bytes -> ${o}`)
          .join(', ')}`,
      );
      expect(seen[max]).toBe('200');
      expect(seen[max + 1]).toBe('400');
      expect(seen[max * 2]).toBe('RESOURCE_EXHAUSTED');
      expect(seen[max * 16]).toBe('RESOURCE_EXHAUSTED');
      const over = await sendBytes(client, encodeStringField1(paramsOf(max + 1)));
      expect(JSON.parse(over.content!).data).toBe("params: larger than the 65536-byte limit (the gateway's --max-params)");
      // A body over --max-body (32 kB here) inside params under --max-params: the 400 names that flag.
      const body = await sendBytes(client, encodeStringField1(JSON.stringify({ url: '/ping', method: 'POST', content: { pad: 'x'.repeat(40_000) } })));
      expect(JSON.parse(body.content!)).toMatchObject({ status_code: '400', data: "content: larger than the 32768-byte limit (the gateway's --max-body)" });
    } finally {
      client.close();
      await gateway.stop();
    }
  });
});

describe('params the store could not carry exactly are refused at the door (defects 12 and 2)', () => {
  test('numbers out of range, Infinity among them, and lone surrogates answer 400 naming the field; the longest ttl is stored as whole milliseconds', async () => {
    const prefix = uniquePrefix('door');
    const gateway = await inProcessGateway(APP, redis.url, prefix);
    try {
      const address = gateway.address;
      const refused: Array<[string, RegExp]> = [
        [asyncParams({ ttl: 1 }).replace('"ttl":1', '"ttl":1e999'), /^queue_detail\.ttl: /],
        [asyncParams({ ttl: 1e18 }), /^queue_detail\.ttl: at most 2592000 seconds/],
        [asyncParams({ ttl: 1e306 }), /^queue_detail\.ttl: /],
        [asyncParams({ ttl: 0.0001 }), /^queue_detail\.ttl: must be more than 0 \(at least 0\.001 seconds/],
        [asyncParams({ job_timeout: 1 }).replace('"job_timeout":1', '"job_timeout":-1e999'), /^queue_detail\.job_timeout: /],
        [asyncParams({ delay: 1e308 }), /^queue_detail\.delay: /],
        [asyncParams({ backoff: 5e-324 }), /^queue_detail\.backoff: /],
        [asyncParams({}, { timeout: 1 }).replace('"timeout":1', '"timeout":1e999'), /^timeout: /],
        [asyncParams({ limit_policy: 'last', key: 'k\ud800' }), /^queue_detail\.key: contains a lone UTF-16 surrogate/],
        [asyncParams({}, { url: '/record\udfff' }), /^url: contains a lone UTF-16 surrogate/],
        [asyncParams({}, { headers: { 'x-trace': '\ud800' } }), /^headers\["x-trace"\]: contains a lone UTF-16 surrogate/],
        [asyncParams({ id: 'no spaces' }), /^queue_detail\.id: /],
      ];
      for (const [params, message] of refused) {
        const a = await rawCall(params, { address });
        expect([params, a.status, a.data]).toEqual([params, 400, expect.stringMatching(message)]);
      }
      const kept = await rawCall(asyncParams({ ttl: 2_592_000, job_timeout: 0.0015 }, { content: { note: 'k\ud800' } }), { address });
      expect(kept.status).toBe(201);
      const [payload] = await redis.admin.lrange(keysFor(prefix).queue(1, 'execute'), 0, -1);
      expect(payload).toContain('"ttl":2592000000,"timeout":2,');
      expect(payload).toContain('"content":{"note":"k\\ud800"}');
    } finally {
      await gateway.stop();
    }
  });
});

describe('a 503 says what is known, and a gateway still connecting makes calls wait (defect 5)', () => {
  const NOT_QUEUED = /^queue unavailable: not queued: /;
  const UNKNOWN = /^queue unavailable: outcome unknown: .*send it again with the same queue_detail\.id/;
  const many = (n: number, address: string, deadlineSeconds = 10): Promise<Answer[]> =>
    Promise.all(Array.from({ length: n }, (_, i) => rawCall(asyncParams({}, { content: { i } }), { address, deadlineSeconds })));
  const waiting = (prefix: string): Promise<number> => redis.admin.llen(keysFor(prefix).queue(1, 'execute'));
  /** True while Redis does not answer a PING within 200 ms (it is asleep in DEBUG SLEEP). */
  const asleep = async (): Promise<boolean> => {
    const probe = redis.admin.duplicate({ commandTimeout: 200, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.ping();
      return false;
    } catch {
      return true;
    } finally {
      probe.disconnect();
    }
  };

  test('Redis slower than the command timeout (DEBUG SLEEP 3): 20 calls answer "outcome unknown", and all 20 were queued', async () => {
    const prefix = uniquePrefix('door');
    const gateway = await inProcessGateway(APP, redis.url, prefix);
    try {
      expect((await rawCall(asyncParams(), { address: gateway.address })).status).toBe(201);
      const sleeping = redis.admin.call('DEBUG', 'SLEEP', '3');
      expect(await waitFor(asleep, 2000)).toBe(true);
      const answers = await many(20, gateway.address);
      await sleeping;
      report(`DEBUG SLEEP 3: ${answers.filter((a) => a.status === 503).length}/20 answered 503: ${JSON.stringify(answers[0].data)}`);
      expect(answers.map((a) => a.status)).toEqual(Array(20).fill(503));
      for (const a of answers) expect(a.data).toMatch(UNKNOWN);
      // Redis runs the calls it held once it wakes, maybe after it answered DEBUG SLEEP itself.
      expect(await waitFor(async () => (await waiting(prefix)) === 21, 3000)).toBe(true);
    } finally {
      await gateway.stop();
    }
  });

  test('the connection dropped while calls are in flight (CLIENT PAUSE, then CLIENT KILL): "outcome unknown"', async () => {
    const prefix = uniquePrefix('door');
    const gateway = await inProcessGateway(APP, redis.url, prefix);
    try {
      expect((await rawCall(asyncParams(), { address: gateway.address })).status).toBe(201);
      await redis.admin.call('CLIENT', 'PAUSE', '10000', 'WRITE');
      const pending = many(10, gateway.address);
      // The enqueues reached Redis and wait there: its blocked client is the gateway's connection.
      const blocked = async (): Promise<boolean> => /blocked_clients:[1-9]/.test(await redis.admin.info('clients'));
      expect(await waitFor(blocked, 5000)).toBe(true);
      await redis.admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      const answers = await pending;
      await redis.admin.call('CLIENT', 'UNPAUSE');
      report(`connection killed in flight: ${JSON.stringify(answers.map((a) => a.status))}: ${JSON.stringify(answers[0].data)}`);
      for (const a of answers) expect([a.status, a.data]).toEqual([503, expect.stringMatching(UNKNOWN)]);
      // The gateway reconnects by itself.
      expect((await rawCall(asyncParams(), { address: gateway.address })).status).toBe(201);
    } finally {
      await redis.admin.call('CLIENT', 'UNPAUSE');
      await gateway.stop();
    }
  });

  test('Redis stopped: "not queued", answered before the caller\'s deadline; Redis back while calls wait: they are queued', async () => {
    const prefix = uniquePrefix('door');
    const gateway = await inProcessGateway(APP, redis.url, prefix);
    try {
      expect((await rawCall(asyncParams(), { address: gateway.address })).status).toBe(201);
      await redis.stop();
      const startedAt = Date.now();
      const down = await many(5, gateway.address, 1.5);
      const tookMs = Date.now() - startedAt;
      report(`Redis stopped: ${JSON.stringify(down.map((a) => a.status))} in ${tookMs} ms (deadline 1500 ms): ${JSON.stringify(down[0].data)}`);
      for (const a of down) expect([a.status, a.data]).toEqual([503, expect.stringMatching(NOT_QUEUED)]);
      // Calls sent while Redis is down wait for it, within their deadline, and are queued when it is back.
      const pending = many(10, gateway.address, 8);
      await redis.start();
      const back = await pending;
      report(`Redis started again while 10 calls waited: ${JSON.stringify(back.map((a) => a.status))}`);
      expect(back.map((a) => a.status)).toEqual(Array(10).fill(201));
      expect(await waiting(prefix)).toBe(10);
    } finally {
      await redis.start().catch(() => undefined);
      await gateway.stop();
    }
  });

  test('Redis demoted to a replica (READONLY, as after a failover): "not queued"', async () => {
    const prefix = uniquePrefix('door');
    const gateway = await inProcessGateway(APP, redis.url, prefix);
    try {
      expect((await rawCall(asyncParams(), { address: gateway.address })).status).toBe(201);
      // A replica of a master that does not answer: it refuses every write, and stays so.
      await redis.admin.call('REPLICAOF', '127.0.0.1', String(await freePort()));
      const refused = await many(5, gateway.address, 3);
      report(`READONLY: ${JSON.stringify(refused.map((a) => a.status))}: ${JSON.stringify(refused[0].data)}`);
      for (const a of refused) expect([a.status, a.data]).toEqual([503, expect.stringMatching(NOT_QUEUED)]);
      expect(await waiting(prefix)).toBe(1);
    } finally {
      await redis.admin.call('REPLICAOF', 'NO', 'ONE');
      await gateway.stop();
    }
  });

  test('Redis full (maxmemory, noeviction): "Redis is full", nothing queued; with room again, 201', async () => {
    const prefix = uniquePrefix('door');
    const gateway = await inProcessGateway(APP, redis.url, prefix);
    try {
      expect((await rawCall(asyncParams(), { address: gateway.address })).status).toBe(201);
      await redis.admin.config('SET', 'maxmemory-policy', 'noeviction');
      await redis.admin.config('SET', 'maxmemory', '1');
      expect(await redis.admin.ping()).toBe('PONG');
      const full = await many(5, gateway.address);
      report(`maxmemory reached: ${JSON.stringify(full.map((a) => a.status))}: ${JSON.stringify(full[0].data)}`);
      for (const a of full) expect([a.status, a.data]).toEqual([503, 'queue unavailable: Redis is full (maxmemory): not queued']);
      expect(await waiting(prefix)).toBe(1);
      await redis.admin.config('SET', 'maxmemory', '0');
      expect((await rawCall(asyncParams(), { address: gateway.address })).status).toBe(201);
    } finally {
      await redis.admin.config('SET', 'maxmemory', '0');
      await gateway.stop();
    }
  });

  test('a gateway process that serves before its Redis connection is ready makes the first 200 calls wait, not fail: all 201', async () => {
    const prefix = uniquePrefix('door');
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const client = new BytesClient(address, grpc.credentials.createInsecure()) as unknown as BytesClient;
    // Redis holds every command, the connection's handshake included, for 3 s: the port binds meanwhile.
    await redis.admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
    const starting = startSwitchyard('gateway', ['--app', APP, '--redis', redis.url, '--prefix', prefix, '--port', String(port), '--host', '127.0.0.1']);
    // Every call waits for the port (waitForReady) and goes in as soon as it binds.
    const answers = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const a = await sendBytes(client, encodeStringField1(asyncParams({}, { content: { i } })), new grpc.Metadata({ waitForReady: true }));
        return a.code === grpc.status.OK
          ? (JSON.parse(a.content!) as { status_code: string; data: unknown })
          : { status_code: grpc.status[a.code], data: a.details };
      }),
    );
    const gw = await starting;
    client.close();
    const statuses: Record<string, number> = {};
    for (const a of answers) statuses[a.status_code] = (statuses[a.status_code] ?? 0) + 1;
    report(
      `start while Redis paused: ${JSON.stringify(statuses)}${statuses['503'] ? ` e.g. ${JSON.stringify(answers.find((a) => a.status_code === '503')!.data)}` : ''}`,
    );
    expect(statuses).toEqual({ '201': 200 });
    expect(await waiting(prefix)).toBe(200);
    gw.kill('SIGKILL');
    await gw.exited;
  }, 60_000);

  test('queue_detail.id: the same id sent again answers 200 "duplicate" with that id, and nothing is queued twice', async () => {
    const prefix = uniquePrefix('door');
    const gateway = await inProcessGateway(APP, redis.url, prefix);
    try {
      const first = await rawCall(asyncParams({ id: 'order-42' }), { address: gateway.address });
      const again = await rawCall(asyncParams({ id: 'order-42' }), { address: gateway.address });
      expect([first.status, first.data]).toEqual([201, { id: 'order-42', state: 'queued' }]);
      expect([again.status, again.data]).toEqual([200, { id: 'order-42', state: 'duplicate' }]);
      expect(await waiting(prefix)).toBe(1);
    } finally {
      await gateway.stop();
    }
  });
});
