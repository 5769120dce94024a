// Hostile input through the real gRPC port: generated params and raw byte strings. Every
// answer must be a well-formed Output, invalid params must get 400, nothing may pollute
// prototypes, and the gateway's memory must not grow with the number of calls.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import Koa from 'koa';
import Router from '@koa/router';
import { toLoadedApp } from '../../shared/call/app';
import { createGateway, type Gateway } from '../../server/gateway';
import { decodeStringField1 } from '../../shared/call/wire';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let gateway: Gateway;
let client: grpc.Client & {
  handel(
    input: { params: Buffer },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (err: Error | null, output?: { content: string }) => void,
  ): void;
};

/** Sends raw bytes as the params field (may be invalid UTF-8). */
function sendBytes(params: Buffer): Promise<{ status_code: string; data: unknown }> {
  return new Promise((resolve, reject) => {
    client.handel({ params }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: Error | null, output?: { content: string }) => {
      if (err) return reject(err);
      const content = output?.content;
      try {
        resolve(JSON.parse(content ?? ''));
      } catch {
        reject(new Error(`not a JSON Output.content: ${String(content).slice(0, 200)}`));
      }
    });
  });
}
const sendText = (text: string) => sendBytes(Buffer.from(text, 'utf8'));

function expectWellFormed(out: { status_code: string; data: unknown }): void {
  expect(out.status_code).toMatch(/^[1-5]\d\d$/);
  expect(out).toHaveProperty('data');
}

beforeAll(async () => {
  const router = new Router();
  router.all('/echo/:id', (ctx) => {
    ctx.body = { id: ctx.params.id, query: ctx.query, body: ctx.request.body ?? null, merged: Object.assign({}, ctx.request.body) };
  });
  const app = new Koa();
  app.use(router.routes()).use(router.allowedMethods());
  gateway = createGateway({
    app: await toLoadedApp(app),
    host: '127.0.0.1',
    port: 0,
    defaultTimeoutMs: 5000,
    maxParamsBytes: 256 * 1024,
    maxBodyBytes: 64 * 1024,
    debug: false,
  });
  const port = await gateway.start();
  const Client = grpc.makeGenericClientConstructor(
    {
      handel: {
        path: '/rpc.RPCServer/handel',
        requestStream: false,
        responseStream: false,
        requestSerialize: ({ params: b }: { params: Buffer }) => {
          const len: number[] = [];
          let n = b.length;
          while (n > 0x7f) {
            len.push((n & 0x7f) | 0x80);
            n >>>= 7;
          }
          len.push(n);
          return Buffer.concat([Buffer.from([0x0a, ...len]), b]);
        },
        requestDeserialize: (b: Buffer) => ({ params: b }),
        responseSerialize: (s: { content: string }) => Buffer.from(s.content),
        responseDeserialize: (b: Buffer) => ({ content: decodeStringField1(b) }),
      },
    },
    'RPCServer',
  );
  client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 }) as never;
});

afterAll(async () => {
  client.close();
  await gateway.stop(1000);
});

const validShape = fc.record(
  {
    url: fc.oneof(fc.constantFrom('/echo/1', '/echo/x?y=1', '/nope', '/echo/1?__proto__[x]=1'), fc.string()),
    method: fc.oneof(fc.constantFrom('GET', 'post', 'PUT', 'delete'), fc.string()),
    headers: fc.option(
      fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'x-a'), fc.string()), fc.anything()),
    ),
    content: fc.option(fc.oneof(fc.jsonValue(), fc.string(), fc.constant('{"__proto__":{"polluted":true}}'))),
    reply: fc.option(fc.oneof(fc.boolean(), fc.anything())),
    timeout: fc.option(fc.oneof(fc.double(), fc.integer())),
    queue_detail: fc.option(
      fc.oneof(fc.record({ level: fc.integer({ min: 0, max: 3 }), limit_policy: fc.constantFrom('execute', 'last', 'discard', 'x') }), fc.anything()),
    ),
  },
  { requiredKeys: [] },
);

/** Our own oracle for "certainly invalid": no url string starting with '/', or no string method. */
function certainlyInvalid(p: unknown): boolean {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return true;
  const o = p as Record<string, unknown>;
  return typeof o.url !== 'string' || !o.url.startsWith('/') || typeof o.method !== 'string';
}

test('10,000+ generated params and byte strings: well-formed Outputs, 400 for the invalid, no leak, no pollution', async () => {
  let tried = 0;
  let badRequests = 0;
  const check = async (text: string, parsed: unknown): Promise<void> => {
    const out = await sendText(text);
    tried++;
    expectWellFormed(out);
    if (certainlyInvalid(parsed)) expect(out.status_code).toBe('400');
    if (out.status_code === '400') {
      badRequests++;
      expect(typeof out.data).toBe('string');
      expect(out.data as string).toMatch(/^(params|url|method|headers|content|reply|timeout|queue_detail)\b.*: /); // names the field
    }
  };

  const run = async (runs: number): Promise<void> => {
    await fc.assert(
      fc.asyncProperty(validShape, async (p) => check(JSON.stringify(p), p)),
      { numRuns: runs },
    );
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (v) => check(JSON.stringify(v), v)),
      { numRuns: runs / 2 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        const out = await sendBytes(Buffer.from(bytes));
        tried++;
        expectWellFormed(out);
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
        } catch {
          parsed = undefined;
        }
        if (certainlyInvalid(parsed)) expect(out.status_code).toBe('400');
      }),
      { numRuns: runs / 2 },
    );
  };

  await run(1000); // warm up: let the heap settle
  gc();
  const before = process.memoryUsage().heapUsed;
  await run(4000);
  gc();
  const after = process.memoryUsage().heapUsed;

  // Handpicked monsters.
  const deep = 100_000;
  for (const text of [
    `{"url":"/echo/1","method":"POST","content":${'['.repeat(deep)}${']'.repeat(deep)}}`,
    `{"url":"/echo/1","method":"POST","content":"${'x'.repeat(256 * 1024 - 44)}"}`,
    `{"url":"/echo/1","method":"POST","content":{"a":"${'y'.repeat(100 * 1024)}"}}`,
    `{"url":"/echo/1","method":"POST","headers":{"__proto__":"x"}}`,
    `{"url":"/echo/1","method":"POST","content":{"__proto__":{"polluted":true}},"__proto__":{"polluted":true}}`,
    `{"url":"/${'z'.repeat(10_000)}","method":"GET"}`,
    '',
    'null',
    '"just a string"',
  ]) {
    const out = await sendText(text);
    tried++;
    expectWellFormed(out);
  }
  // Two bytes over --max-params: the gateway's own 400; far over it, the transport refuses it
  // from the message's length prefix, before any of it is buffered (RESOURCE_EXHAUSTED).
  expect((await sendText(`{"url":"/echo/1","method":"POST","content":"${'x'.repeat(256 * 1024 - 44)}"}`)).data).toMatch(/params: larger than/);
  await expect(sendText(`{"url":"/echo/1","method":"POST","content":"${'x'.repeat(300 * 1024)}"}`)).rejects.toMatchObject({
    code: grpc.status.RESOURCE_EXHAUSTED,
  });
  expect((await sendText(`{"url":"/echo/1","method":"POST","content":{"a":"${'y'.repeat(100 * 1024)}"}}`)).data).toMatch(/content: larger than/);
  expect((await sendText('{"url":"/echo/1","method":"POST","headers":{"__proto__":"x"}}')).status_code).toBe('400');

  // Prototype pollution reached nothing.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);

  // A valid call still works after all that.
  const ok = await sendText('{"url":"/echo/7?a=1","method":"PUT","content":{"b":2}}');
  expect(ok).toEqual({ status_code: '200', data: { id: '7', query: { a: '1' }, body: { b: 2 }, merged: { b: 2 } } });

  expect(tried).toBeGreaterThanOrEqual(10_000);
  expect(badRequests).toBeGreaterThan(tried / 2);
  // 8,000 calls after warm-up may not keep more than 16 MB of heap (i.e. ~2 KB per call).
  expect(after - before).toBeLessThan(16 * 1024 * 1024);
  process.stdout.write(
    `hostile input: ${tried} calls, ${badRequests} answered 400, heap ${(before / 1048576).toFixed(1)} MB → ${(after / 1048576).toFixed(1)} MB\n`,
  );
}, 180_000);
