// Every sync row of the status table (docs/protocol.md, section 3), through a real gRPC client over loopback.
import { readFileSync, rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import Router from '@koa/router';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import Koa from 'koa';
import { call, closeClients, rawCall } from '../../client';
import { createGateway, type Gateway } from '../../server/gateway';
import { toLoadedApp } from '../../shared/call/app';
import { decodeStringField1 } from '../../shared/call/wire';
import { makeTestPki } from '../helpers/pki';

function testApp(): Koa {
  const router = new Router();
  router.get('/users/:id', (ctx) => {
    ctx.body = { id: ctx.params.id, query: ctx.query, who: ctx.headers['x-user'] ?? null, method: ctx.method, rpc: ctx.state.rpc };
  });
  router.post('/users', (ctx) => {
    ctx.status = 201;
    ctx.body = { created: ctx.request.body, type: ctx.request.type, seenByParser: ctx.state.parserSkipped };
  });
  router.put('/users/:id', (ctx) => {
    ctx.body = `updated ${ctx.params.id}`;
  });
  router.delete('/users/:id', (ctx) => {
    ctx.status = 204;
  });
  router.get('/boom', () => {
    throw new Error('kaboom');
  });
  router.get('/teapot', (ctx) => ctx.throw(418, 'short and stout'));
  router.get('/slow', async (ctx) => {
    await new Promise((r) => setTimeout(r, Number(ctx.query.ms)));
    ctx.body = 'late';
  });
  const app = new Koa();
  app.silent = true;
  // A body parser in the style of koa-bodyparser: it must find the body set and skip.
  app.use(async (ctx, next) => {
    if ((ctx.request as { body?: unknown }).body !== undefined) ctx.state.parserSkipped = true;
    else throw new Error('body parser would have read a socket');
    await next();
  });
  app.use(router.routes()).use(router.allowedMethods());
  return app;
}

let gateway: Gateway;
let address: string;

async function start(options: Partial<Parameters<typeof createGateway>[0]> = {}): Promise<[Gateway, string]> {
  const g = createGateway({
    app: await toLoadedApp(testApp()),
    host: '127.0.0.1',
    port: 0,
    defaultTimeoutMs: 2000,
    maxParamsBytes: 1 << 20,
    maxBodyBytes: 1 << 19,
    debug: false,
    ...options,
  });
  return [g, `127.0.0.1:${await g.start()}`];
}

beforeAll(async () => {
  [gateway, address] = await start();
});
afterAll(async () => {
  closeClients();
  await gateway.stop(1000);
});

describe('the route answers', () => {
  test('200 with an object body, route params, query and headers; ctx.state.rpc for a sync call', async () => {
    const a = await call('/users/42?verbose=1&tag=a&tag=b', { address, headers: { 'X-User': 'ada' } });
    expect(a.status).toBe(200);
    expect(a.data).toEqual({
      id: '42',
      query: { verbose: '1', tag: ['a', 'b'] },
      who: 'ada',
      method: 'GET',
      rpc: { reply: true, level: null, policy: null, key: null, jobId: null, attempt: 1, fence: null },
    });
    expect(a.raw).toMatch(/^\{"status_code":"200","data":/);
  });

  test('201 with the parsed body: an object, an array, or a JSON string', async () => {
    for (const content of [{ name: 'Ada' }, [1, 2, 3], '{"name":"Grace"}']) {
      const a = await call('/users', { address, method: 'post', content });
      expect(a.status).toBe(201);
      expect(a.data).toEqual({ created: typeof content === 'string' ? JSON.parse(content) : content, type: 'application/json', seenByParser: true });
    }
  });

  test('a string body travels as a string; 204 has null data', async () => {
    expect(await call('/users/7', { address, method: 'PUT', content: {} })).toMatchObject({ status: 200, data: 'updated 7' });
    expect(await call('/users/7', { address, method: 'DELETE' })).toMatchObject({ status: 204, data: null });
  });

  test('ctx.throw(4xx) is the app answering: its status and message', async () => {
    expect(await call('/teapot', { address })).toMatchObject({ status: 418, data: 'short and stout' });
  });
});

describe('errors of the status table', () => {
  test('400 names the field for malformed params', async () => {
    const cases: Array<[string, RegExp]> = [
      ['not json', /^params: not valid JSON/],
      ['[1,2]', /^params: expected a JSON object, got an array$/],
      ['{"method":"GET"}', /^url: required$/],
      ['{"url":"/x"}', /^method: required$/],
      ['{"url":42,"method":"GET"}', /^url: expected a string, got number 42$/],
      ['{"url":"/x","method":"GET","reply":"false"}', /^reply: expected true or false, got string "false"$/],
      [`{"url":"/x","method":"GET","content":${'['.repeat(101)}${']'.repeat(101)}}`, /^content: nested deeper than 100 levels$/],
      ['{"url":"/x","method":"G E T"}', /^method: /],
      ['{"url":"/x","method":"GET","headers":{"a":1}}', /^headers\.a: /],
      ['{"url":"/x","method":"GET","content":12}', /^content: /],
      ['{"url":"/x","method":"GET","reply":"yes"}', /^reply: /],
      ['{"url":"/x","method":"GET","timeout":-1}', /^timeout: /],
      ['{"url":"/x","method":"GET","reply":false}', /^queue_detail: required/],
      ['{"url":"/x","method":"GET","reply":false,"queue_detail":{"level":3,"limit_policy":"last"}}', /^queue_detail\.level: expected 1 or 2, got number 3$/],
      ['{"url":"/x","method":"GET","reply":false,"queue_detail":{"level":1,"limit_policy":"sometimes"}}', /^queue_detail\.limit_policy: /],
    ];
    for (const [params, message] of cases) {
      const a = await rawCall(params, { address });
      expect([params, a.status]).toEqual([params, 400]);
      expect(a.data).toMatch(message);
    }
  });

  test('404 when no route matches, 405 when the path matches but not the method', async () => {
    expect(await call('/nowhere', { address })).toMatchObject({ status: 404, data: 'no route matches GET /nowhere' });
    const a = await call('/users/1', { address, method: 'PATCH' });
    expect(a.status).toBe(405);
    expect(a.data).toMatch(/PATCH is not allowed on \/users\/1 \(allowed: .*GET.*PUT.*DELETE/);
  });

  test('500 answers the status text, never the message; with debug on, the message and the stack', async () => {
    const a = await call('/boom', { address });
    expect(a).toMatchObject({ status: 500, data: 'Internal Server Error' });
    const [debugGateway, debugAddress] = await start({ debug: true });
    try {
      const d = await call('/boom', { address: debugAddress });
      expect(d.status).toBe(500);
      expect(d.data).toMatch(/^kaboom\nError: kaboom\n\s+at /);
    } finally {
      await debugGateway.stop(100);
    }
  });

  test('504 when the sync deadline passes: params.timeout, --timeout, and the gRPC deadline, the shortest wins', async () => {
    expect(await rawCall('{"url":"/slow?ms=600","method":"GET","timeout":0.1}', { address })).toMatchObject({ status: 504 });
    expect(await rawCall('{"url":"/slow?ms=50","method":"GET","timeout":1}', { address })).toMatchObject({ status: 200, data: 'late' });
    // --timeout (2 s here) applies when params give none.
    expect(await rawCall('{"url":"/slow?ms=2500","method":"GET"}', { address })).toMatchObject({ status: 504 });
    // A gRPC deadline shorter than everything: the route's answer would come too late, the client sees DEADLINE_EXCEEDED.
    await expect(rawCall('{"url":"/slow?ms=1500","method":"GET","timeout":5}', { address, deadlineSeconds: 0.3 })).rejects.toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
    });
  });

  test('an async call on a gateway without a queue answers 503', async () => {
    const a = await rawCall('{"url":"/x","method":"POST","reply":false,"queue_detail":{"level":1,"limit_policy":"execute"}}', { address });
    expect(a.status).toBe(503);
  });
});

describe('the service', () => {
  test('`handle` is an alias of `handel`, with the same answers', async () => {
    const Client = grpc.makeGenericClientConstructor(
      {
        handle: {
          path: '/rpc.RPCServer/handle',
          requestStream: false,
          responseStream: false,
          requestSerialize: (p: { params: string }) => Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(p.params)]), Buffer.from(p.params)]),
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => decodeStringField1(b),
        },
      },
      'RPCServer',
    );
    const client = new Client(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      handle: (input: { params: string }, callback: (err: Error | null, out: string) => void) => void;
    };
    const content = await new Promise<string>((resolve, reject) =>
      client.handle({ params: '{"url":"/users/9","method":"GET"}' }, (err: Error | null, out: string) => (err ? reject(err) : resolve(out))),
    );
    client.close();
    expect(JSON.parse(content)).toEqual(JSON.parse((await call('/users/9', { address })).raw));
  });

  test('grpc.health.v1.Health answers SERVING for the server and for rpc.RPCServer', async () => {
    const definition = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String });
    const health = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }).grpc.health
      .v1;
    const client = new health.Health(address, grpc.credentials.createInsecure());
    for (const service of ['', 'rpc.RPCServer']) {
      const answer = await new Promise<{ status: string }>((resolve, reject) =>
        client.Check({ service }, (err: Error | null, out: { status: string }) => (err ? reject(err) : resolve(out))),
      );
      expect(answer.status).toBe('SERVING');
    }
    client.close();
  });

  test('with a bearer token, calls without it or with a wrong one are UNAUTHENTICATED', async () => {
    const [secured, securedAddress] = await start({ token: 's3cret' });
    try {
      await expect(call('/users/1', { address: securedAddress })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      await expect(call('/users/1', { address: securedAddress, token: 'wrong' })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      expect((await call('/users/1', { address: securedAddress, token: 's3cret' })).status).toBe(200);
    } finally {
      await secured.stop(100);
    }
  });

  test('TLS, and with a CA mutual TLS: only clients that trust the gateway (and that it trusts) get answers', async () => {
    const pki = makeTestPki();
    const [tls, tlsAddress] = await start({ tls: { cert: pki.serverCert, key: pki.serverKey } });
    const [mtls, mtlsAddress] = await start({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert } });
    try {
      const trusting = grpc.credentials.createSsl(readFileSync(pki.caCert));
      expect((await call('/users/7', { address: tlsAddress, credentials: trusting })).data).toMatchObject({ id: '7' });
      // A plaintext client cannot talk to a TLS port.
      await expect(call('/users/7', { address: tlsAddress, timeout: 2 })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      // Mutual TLS: a client without a certificate is turned away; one signed by the CA is served.
      await expect(call('/users/7', { address: mtlsAddress, credentials: trusting, timeout: 2 })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      const withCert = grpc.credentials.createSsl(readFileSync(pki.caCert), readFileSync(pki.clientKey), readFileSync(pki.clientCert));
      expect((await call('/users/7', { address: mtlsAddress, credentials: withCert })).status).toBe(200);
      expect((await call('/users/8', { address: mtlsAddress, credentials: withCert })).data).toMatchObject({ id: '8' });
    } finally {
      await Promise.all([tls.stop(100), mtls.stop(100)]);
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });
});
