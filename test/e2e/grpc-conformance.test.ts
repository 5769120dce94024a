// The gateway is a conformant gRPC server (grpc/doc/PROTOCOL-HTTP2.md, health-checking.md), seen by
// three clients that share no server code: grpc-js, Python's grpcio and h2load, plus raw
// node:http2 frames for what the libraries never send (oversized prefixes, two messages, a
// stalled body, a wrong content-type, gzip by hand, a client that never reads its answers).
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import Router from '@koa/router';
import Koa from 'koa';
import { createGateway, type Gateway } from '../../server/gateway';
import { type Method } from '../../server/grpc/call';
import { createGrpcServer, type GrpcServer } from '../../server/grpc/server';
import { toLoadedApp } from '../../shared/call/app';
import { decodeStringField1, encodeStringField1, rpcServiceDefinition } from '../../shared/call/wire';
import { makeTestPki } from '../helpers/pki';

const PYTHON = '/usr/bin/python3';
const pythonHasGrpc = spawnSync(PYTHON, ['-c', 'import grpc']).status === 0;
const h2loadPresent = spawnSync('h2load', ['--version']).status === 0;
const MAX_PARAMS = 64 * 1024;

/** Routes whose abort signal fired, and routes that started, by their `tag`. */
const aborted = new Set<string>();
const started = new Set<string>();

function testApp(): Koa {
  const router = new Router();
  router.post('/echo', (ctx) => {
    ctx.body = { echo: ctx.request.body };
  });
  router.get('/slow', async (ctx) => {
    const tag = String(ctx.query.tag);
    (ctx.state.rpc as { signal: AbortSignal }).signal.addEventListener('abort', () => aborted.add(tag));
    started.add(tag);
    await new Promise((resolve) => setTimeout(resolve, Number(ctx.query.ms)));
    ctx.body = 'late';
  });
  router.get('/big', (ctx) => {
    ctx.body = 'x'.repeat(Number(ctx.query.kb) * 1024);
  });
  const app = new Koa();
  app.silent = true;
  app.use(router.routes()).use(router.allowedMethods());
  return app;
}

async function startGateway(options: Partial<Parameters<typeof createGateway>[0]> = {}): Promise<[Gateway, string]> {
  const g = createGateway({
    app: await toLoadedApp(testApp()),
    host: '127.0.0.1',
    port: 0,
    defaultTimeoutMs: 30_000,
    maxParamsBytes: MAX_PARAMS,
    maxBodyBytes: MAX_PARAMS,
    debug: false,
    ...options,
  });
  return [g, `127.0.0.1:${await g.start()}`];
}

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!condition()) throw new Error(`still waiting for ${what}`);
}

// ---- grpc-js client ----

type Outcome = { code: grpc.status; content?: string; details?: string };
type RpcClient = grpc.Client & Record<'handel' | 'handle', grpc.requestCallback<unknown> & ((...args: unknown[]) => grpc.ClientUnaryCall)>;
const RpcClientConstructor = grpc.makeGenericClientConstructor(rpcServiceDefinition, 'RPCServer');

function rpcClient(address: string, options: grpc.ChannelOptions = {}): RpcClient {
  return new RpcClientConstructor(address, grpc.credentials.createInsecure(), options) as unknown as RpcClient;
}

function unary(
  client: RpcClient,
  params: string,
  options: { method?: 'handel' | 'handle'; metadata?: grpc.Metadata; deadlineMs?: number; onCall?: (call: grpc.ClientUnaryCall) => void } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = client[options.method ?? 'handel'](
      { params },
      options.metadata ?? new grpc.Metadata(),
      { deadline: Date.now() + (options.deadlineMs ?? 10_000) },
      (err: grpc.ServiceError | null, output?: { content: string }) =>
        resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, content: output?.content }),
    );
    options.onCall?.(call);
  });
}

/** A client for any path, messages as raw bytes. */
function bytesClient(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure());
}
function bytesCall(client: grpc.Client, path: string, message: Buffer, metadata = new grpc.Metadata()): Promise<Outcome & { bytes?: Buffer }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      message,
      metadata,
      { deadline: Date.now() + 10_000 },
      (err, bytes) => resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, bytes }),
    );
  });
}

const HEALTH = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
const healthOf = (bytes: Buffer): string => HEALTH[bytes.length === 0 ? 0 : bytes[1]];

/** Health/Watch: every status received, and the end status. */
function watch(client: grpc.Client, service: string): { seen: string[]; ended: Promise<grpc.StatusObject>; call: grpc.ClientReadableStream<Buffer> } {
  const seen: string[] = [];
  const call = client.makeServerStreamRequest(
    '/grpc.health.v1.Health/Watch',
    (b: Buffer) => b,
    (b: Buffer) => b,
    encodeStringField1(service),
  );
  call.on('data', (bytes: Buffer) => seen.push(healthOf(bytes)));
  call.on('error', () => {});
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  return { seen, ended, call };
}

const echoParams = (content: unknown = { a: 'ü' }): string => JSON.stringify({ url: '/echo', method: 'POST', content });
const statusCodeOf = (o: Outcome): string => (o.code === grpc.status.OK ? JSON.parse(o.content!).status_code : grpc.status[o.code]);

// ---- raw node:http2 ----

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  data: Buffer;
  rstCode: number;
  grpcStatus: number;
  grpcMessage: string;
}

function frame(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}
const inputFrame = (params: string): Buffer => frame(encodeStringField1(params));

const GRPC_HEADERS = { ':method': 'POST', ':path': '/rpc.RPCServer/handel', 'content-type': 'application/grpc', te: 'trailers' };

/** One request: `body` chunks are written, and the request ends unless `end` is false. */
function rawRequest(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body: Buffer[] = [], end = true): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ...GRPC_HEADERS, ...headers }, { endStream: false });
    let responseHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const data: Buffer[] = [];
    req.on('response', (h) => (responseHeaders = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (chunk: Buffer) => data.push(chunk));
    req.on('error', () => {});
    req.on('close', () => {
      const status = responseHeaders[':status'];
      if (status === undefined) return reject(new Error(`no response (RST_STREAM ${req.rstCode})`));
      const grpcStatus = trailers['grpc-status'] ?? responseHeaders['grpc-status'];
      resolve({
        status: Number(status),
        headers: responseHeaders,
        trailers,
        data: Buffer.concat(data),
        rstCode: req.rstCode ?? 0,
        grpcStatus: grpcStatus === undefined ? -1 : Number(grpcStatus),
        grpcMessage: String(trailers['grpc-message'] ?? responseHeaders['grpc-message'] ?? ''),
      });
    });
    for (const chunk of body) req.write(chunk);
    if (end) req.end();
  });
}

/** The Output.content of a raw answer's one message. */
const contentOf = (answer: RawAnswer): { status_code: string; data: unknown } => JSON.parse(decodeStringField1(answer.data.subarray(5)));

let gateway: Gateway;
let address: string;

beforeAll(async () => {
  [gateway, address] = await startGateway();
});
afterAll(async () => {
  await gateway.stop(1000);
});

describe('grpc-js client', () => {
  let client: RpcClient;
  beforeAll(() => (client = rpcClient(address)));
  afterAll(() => client.close());

  test('unary handel and handle; custom and -bin metadata pass', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-custom', 'yes');
    metadata.set('x-trace-bin', Buffer.from([0, 1, 0xff]));
    for (const method of ['handel', 'handle'] as const) {
      const answer = await unary(client, echoParams(), { method, metadata });
      expect(answer.code).toBe(grpc.status.OK);
      expect(JSON.parse(answer.content!)).toEqual({ status_code: '200', data: { echo: { a: 'ü' } } });
    }
  });

  test('gzip-compressed requests (the channel compresses every message)', async () => {
    const gzipClient = rpcClient(address, { 'grpc.default_compression_algorithm': 2 });
    try {
      const answer = await unary(gzipClient, echoParams({ pad: 'z'.repeat(10_000) }));
      expect(JSON.parse(answer.content!).data).toEqual({ echo: { pad: 'z'.repeat(10_000) } });
    } finally {
      gzipClient.close();
    }
  });

  test('grpc-timeout: DEADLINE_EXCEEDED when it passes, and the route signal aborts', async () => {
    const answer = await unary(client, JSON.stringify({ url: '/slow?ms=3000&tag=js-deadline', method: 'GET' }), { deadlineMs: 300 });
    expect(answer.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await waitFor('the route signal of js-deadline', () => aborted.has('js-deadline'));
  });

  test('cancellation (RST_STREAM) aborts the route signal', async () => {
    let pending: grpc.ClientUnaryCall | undefined;
    const answer = unary(client, JSON.stringify({ url: '/slow?ms=5000&tag=js-cancel', method: 'GET' }), { onCall: (c) => (pending = c) });
    await waitFor('the route to start', () => started.has('js-cancel'));
    expect(aborted.has('js-cancel')).toBe(false);
    pending!.cancel();
    expect((await answer).code).toBe(grpc.status.CANCELLED);
    await waitFor('the route signal of js-cancel', () => aborted.has('js-cancel'));
  });

  test('unknown method and unknown service: UNIMPLEMENTED', async () => {
    const raw = bytesClient(address);
    try {
      expect((await bytesCall(raw, '/rpc.RPCServer/nope', Buffer.alloc(0))).code).toBe(grpc.status.UNIMPLEMENTED);
      expect((await bytesCall(raw, '/other.Service/Do', Buffer.alloc(0))).code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      raw.close();
    }
  });

  test('a message over the limit: RESOURCE_EXHAUSTED; just under it: answered', async () => {
    expect(statusCodeOf(await unary(client, echoParams({ pad: 'x'.repeat(MAX_PARAMS - 200) })))).toBe('200');
    expect(statusCodeOf(await unary(client, echoParams({ pad: 'x'.repeat(MAX_PARAMS + 100) })))).toBe('RESOURCE_EXHAUSTED');
    expect(statusCodeOf(await unary(client, echoParams()))).toBe('200');
  });

  test('health Check: SERVING, NOT_FOUND for an unknown service; Watch: the status, then each change', async () => {
    const raw = bytesClient(address);
    try {
      expect(healthOf((await bytesCall(raw, '/grpc.health.v1.Health/Check', encodeStringField1(''))).bytes!)).toBe('SERVING');
      expect(healthOf((await bytesCall(raw, '/grpc.health.v1.Health/Check', encodeStringField1('rpc.RPCServer'))).bytes!)).toBe('SERVING');
      expect((await bytesCall(raw, '/grpc.health.v1.Health/Check', encodeStringField1('no.Such'))).code).toBe(grpc.status.NOT_FOUND);
      const known = watch(raw, 'custom.Service');
      await waitFor('SERVICE_UNKNOWN', () => known.seen.length === 1);
      expect(known.seen).toEqual(['SERVICE_UNKNOWN']);
      gateway.health.setStatus('custom.Service', 'SERVING');
      gateway.health.setStatus('custom.Service', 'NOT_SERVING');
      await waitFor('two changes', () => known.seen.length === 3);
      expect(known.seen).toEqual(['SERVICE_UNKNOWN', 'SERVING', 'NOT_SERVING']);
      known.call.cancel();
      expect((await known.ended).code).toBe(grpc.status.CANCELLED);
    } finally {
      raw.close();
    }
  });

  test('keepalive pings every second: answered, the connection stays up (no GOAWAY too_many_pings)', async () => {
    const pinging = rpcClient(address, { 'grpc.keepalive_time_ms': 1000, 'grpc.keepalive_timeout_ms': 5000, 'grpc.keepalive_permit_without_calls': 1 });
    try {
      expect(statusCodeOf(await unary(pinging, echoParams()))).toBe('200');
      const states = new Set<grpc.connectivityState>();
      const channel = pinging.getChannel();
      const poll = setInterval(() => states.add(channel.getConnectivityState(false)), 20);
      await new Promise((resolve) => setTimeout(resolve, 3500));
      clearInterval(poll);
      expect([...states]).toEqual([grpc.connectivityState.READY]);
      expect(statusCodeOf(await unary(pinging, echoParams()))).toBe('200');
    } finally {
      pinging.close();
    }
  });

  test('--token: checked on the headers (UNAUTHENTICATED), timing-safe; health needs none', async () => {
    const [secured, securedAddress] = await startGateway({ token: 's3cret' });
    const c = rpcClient(securedAddress);
    const raw = bytesClient(securedAddress);
    try {
      expect((await unary(c, echoParams())).code).toBe(grpc.status.UNAUTHENTICATED);
      const metadata = new grpc.Metadata();
      metadata.set('authorization', 'Bearer s3cret');
      expect(statusCodeOf(await unary(c, echoParams(), { metadata }))).toBe('200');
      expect(healthOf((await bytesCall(raw, '/grpc.health.v1.Health/Check', encodeStringField1(''))).bytes!)).toBe('SERVING');
    } finally {
      c.close();
      raw.close();
      await secured.stop(100);
    }
  });

  test('graceful stop: health turns NOT_SERVING, in-flight calls answer, new ones are refused', async () => {
    const [stopping, stoppingAddress] = await startGateway();
    const c = rpcClient(stoppingAddress);
    const raw = bytesClient(stoppingAddress);
    try {
      const watching = watch(raw, 'rpc.RPCServer');
      await waitFor('SERVING', () => watching.seen.length === 1);
      const inFlight = unary(c, JSON.stringify({ url: '/slow?ms=800&tag=grace-ok', method: 'GET' }));
      await waitFor('the route to start', () => started.has('grace-ok'));
      expect(stopping.inFlight()).toBe(1);
      await stopping.stop(10_000);
      expect(statusCodeOf(await inFlight)).toBe('200');
      expect(watching.seen).toEqual(['SERVING', 'NOT_SERVING']);
      expect((await watching.ended).code).toBe(grpc.status.UNAVAILABLE);
      expect((await unary(c, echoParams(), { deadlineMs: 2000 })).code).not.toBe(grpc.status.OK);
    } finally {
      c.close();
      raw.close();
    }
  });

  test('graceful stop: a call still running when the grace ends is cut off, and its route signal aborts', async () => {
    const [stopping, stoppingAddress] = await startGateway();
    const c = rpcClient(stoppingAddress);
    try {
      const cut = unary(c, JSON.stringify({ url: '/slow?ms=5000&tag=grace-cut', method: 'GET' }));
      await waitFor('the route to start', () => started.has('grace-cut'));
      await stopping.stop(200);
      expect((await cut).code).not.toBe(grpc.status.OK);
      await waitFor('the route signal of grace-cut', () => aborted.has('grace-cut'));
    } finally {
      c.close();
    }
  });

  test('TLS serves h2 by ALPN; mutual TLS refuses a client without a certificate', async () => {
    const pki = makeTestPki();
    const [tls, tlsAddress] = await startGateway({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert } });
    try {
      const ca = readFileSync(pki.caCert);
      const withCert = http2.connect(`https://localhost:${tlsAddress.split(':')[1]}`, {
        ca,
        cert: readFileSync(pki.clientCert),
        key: readFileSync(pki.clientKey),
      });
      const answer = await rawRequest(withCert, {}, [inputFrame(echoParams())]);
      expect(withCert.alpnProtocol).toBe('h2');
      expect(contentOf(answer).status_code).toBe('200');
      withCert.close();
      const without = http2.connect(`https://localhost:${tlsAddress.split(':')[1]}`, { ca });
      without.on('error', () => {});
      await expect(rawRequest(without, {}, [inputFrame(echoParams())])).rejects.toThrow();
      without.destroy();
    } finally {
      await tls.stop(100);
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });
});

describe('raw HTTP/2 frames', () => {
  let session: ClientHttp2Session;
  beforeAll(() => {
    session = http2.connect(`http://${address}`);
    session.on('error', () => {});
  });
  afterAll(() => session.close());

  test('content-type other than application/grpc[+proto]: HTTP 415; not POST: HTTP 405', async () => {
    for (const contentType of ['application/json', 'application/grpc+json', 'text/plain']) {
      expect((await rawRequest(session, { 'content-type': contentType }, [inputFrame(echoParams())])).status).toBe(415);
    }
    expect((await rawRequest(session, { 'content-type': undefined }, [inputFrame(echoParams())])).status).toBe(415);
    for (const contentType of ['application/grpc', 'application/grpc+proto', 'application/grpc; charset=utf-8']) {
      expect(contentOf(await rawRequest(session, { 'content-type': contentType }, [inputFrame(echoParams())])).status_code).toBe('200');
    }
    expect((await rawRequest(session, { ':method': 'GET' }, [], true)).status).toBe(405);
  });

  test('an answer: headers, one message, grpc-status 0 in the trailers; without a te header too', async () => {
    const answer = await rawRequest(session, {}, [inputFrame(echoParams())]);
    expect(answer.headers['content-type']).toBe('application/grpc');
    expect(answer.trailers['grpc-status']).toBe('0');
    expect(answer.data.readUInt32BE(1)).toBe(answer.data.length - 5);
    expect(contentOf(answer).data).toEqual({ echo: { a: 'ü' } });
    expect(contentOf(await rawRequest(session, { te: undefined }, [inputFrame(echoParams())])).status_code).toBe('200');
  });

  test('errors are trailers-only: the status in the one HEADERS frame, grpc-message percent-encoded', async () => {
    const answer = await rawRequest(session, { ':path': '/rpc.RPCServer/handel%zz' }, [inputFrame(echoParams())]);
    expect(answer.grpcStatus).toBe(grpc.status.UNIMPLEMENTED);
    expect(answer.headers['grpc-status']).toBe(String(grpc.status.UNIMPLEMENTED));
    expect(answer.data.length).toBe(0);
    expect(answer.grpcMessage).toBe('The server does not implement the method /rpc.RPCServer/handel%25zz');
  });

  test('a length prefix over the limit: RESOURCE_EXHAUSTED at once, the body never read (the client is told to stop)', async () => {
    const prefix = Buffer.from([0, 0, 0xa0, 0, 0]); // 10 MiB announced, 100 bytes sent, the request left open
    const answer = await rawRequest(session, {}, [prefix, Buffer.alloc(100)], false);
    expect(answer.grpcStatus).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(answer.grpcMessage).toBe('Received message larger than max (10485760 vs 65542)');
    expect(answer.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
  });

  test('two messages, no message, or a message cut short: INTERNAL', async () => {
    const two = await rawRequest(session, {}, [inputFrame(echoParams()), inputFrame(echoParams())]);
    expect([two.grpcStatus, two.grpcMessage]).toEqual([grpc.status.INTERNAL, 'more than one request message on a call that takes one']);
    expect((await rawRequest(session, {}, [])).grpcStatus).toBe(grpc.status.INTERNAL);
    expect((await rawRequest(session, {}, [inputFrame(echoParams()).subarray(0, 20)])).grpcStatus).toBe(grpc.status.INTERNAL);
    expect((await rawRequest(session, {}, [Buffer.from([0, 0])])).grpcStatus).toBe(grpc.status.INTERNAL);
  });

  test('a prefix and a message split across many DATA frames are put together', async () => {
    const whole = inputFrame(echoParams({ pad: 'p'.repeat(3000) }));
    const pieces = [whole.subarray(0, 2), whole.subarray(2, 4), whole.subarray(4, 7), whole.subarray(7, 1000), whole.subarray(1000)];
    expect(contentOf(await rawRequest(session, {}, pieces)).data).toEqual({ echo: { pad: 'p'.repeat(3000) } });
  });

  test('a stalled body (the message never completes) ends at its deadline', async () => {
    const whole = inputFrame(echoParams());
    const answer = await rawRequest(session, { 'grpc-timeout': '200m' }, [whole.subarray(0, 10)], false);
    expect(answer.grpcStatus).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  test('grpc-timeout in every unit (H M S m u n); an invalid one is refused', async () => {
    for (const timeout of ['1H', '2M', '30S', '20000m', '20000000u', '99999999S']) {
      expect(contentOf(await rawRequest(session, { 'grpc-timeout': timeout }, [inputFrame(echoParams())])).status_code).toBe('200');
    }
    for (const timeout of ['1x', '123456789S', 'S', '-1S', '1.5S']) {
      expect((await rawRequest(session, { 'grpc-timeout': timeout }, [inputFrame(echoParams())])).grpcStatus).toBe(grpc.status.INTERNAL);
    }
    // Nanoseconds: 8 digits are at most 0.1 s, so this unit is seen passing.
    const answer = await rawRequest(session, { 'grpc-timeout': '50000000n' }, [inputFrame(JSON.stringify({ url: '/slow?ms=3000&tag=raw-n', method: 'GET' }))]);
    expect(answer.grpcStatus).toBe(grpc.status.DEADLINE_EXCEEDED);
    await waitFor('the route signal of raw-n', () => aborted.has('raw-n'));
  });

  test('grpc-encoding: gzip (with a decompressed size limit), identity; an unknown one UNIMPLEMENTED with grpc-accept-encoding', async () => {
    const params = echoParams({ pad: 'g'.repeat(5000) });
    const gz = frame(gzipSync(encodeStringField1(params)), true);
    expect(contentOf(await rawRequest(session, { 'grpc-encoding': 'gzip' }, [gz])).data).toEqual({ echo: { pad: 'g'.repeat(5000) } });
    expect(contentOf(await rawRequest(session, { 'grpc-encoding': 'gzip' }, [inputFrame(params)])).status_code).toBe('200');
    expect(contentOf(await rawRequest(session, { 'grpc-encoding': 'identity' }, [inputFrame(params)])).status_code).toBe('200');
    expect((await rawRequest(session, {}, [gz])).grpcStatus).toBe(grpc.status.INTERNAL);
    const unknown = await rawRequest(session, { 'grpc-encoding': 'br' }, [inputFrame(params)]);
    expect(unknown.grpcStatus).toBe(grpc.status.UNIMPLEMENTED);
    expect(unknown.headers['grpc-accept-encoding']).toBe('identity,gzip');
    // 16 MB of zeros in a few kB: refused once the output passes the limit, not decompressed whole.
    const bomb = await rawRequest(session, { 'grpc-encoding': 'gzip' }, [frame(gzipSync(Buffer.alloc(16 << 20)), true)]);
    expect(bomb.grpcStatus).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(bomb.grpcMessage).toMatch(/decompressed message is larger than the 65542-byte limit/);
    expect((await rawRequest(session, { 'grpc-encoding': 'gzip' }, [frame(Buffer.from('not gzip'), true)])).grpcStatus).toBe(grpc.status.INTERNAL);
  });

  test('--token: a call without it is answered UNAUTHENTICATED on its headers, before a byte of body is sent', async () => {
    const [secured, securedAddress] = await startGateway({ token: 's3cret' });
    const s = http2.connect(`http://${securedAddress}`);
    try {
      // Nothing but headers: the answer cannot be waiting for a body.
      const refused = await rawRequest(s, {}, [], false);
      expect([refused.grpcStatus, refused.grpcMessage]).toEqual([grpc.status.UNAUTHENTICATED, 'missing or wrong bearer token']);
      expect((await rawRequest(s, { authorization: 'Bearer s3creT' }, [], false)).grpcStatus).toBe(grpc.status.UNAUTHENTICATED);
      expect(contentOf(await rawRequest(s, { authorization: 'Bearer s3cret' }, [inputFrame(echoParams())])).status_code).toBe('200');
    } finally {
      s.close();
      await secured.stop(100);
    }
  });
});

describe('memory a slow or stalled client can hold is bounded', () => {
  // A bare server with small limits: 64 kB messages, 100 kB per connection.
  const echo: Method<Buffer, Buffer> = {
    auth: false,
    decode: (b) => b,
    encode: (b, reserve) => Buffer.concat([Buffer.alloc(reserve), b]),
    handle: (call) => call.respond(call.request.length === 1 ? Buffer.alloc(40_000, 1) : call.request),
  };
  let server: GrpcServer;
  let port: number;
  beforeAll(async () => {
    // Answers the metadata it was given, as the service sees it.
    const metadata: Method<Buffer, Buffer> = {
      ...echo,
      handle: (call) => call.respond(Buffer.from(JSON.stringify([call.header('x-custom'), call.header('x-trace-bin'), call.header(':path')]))),
    };
    const methods = new Map([
      ['/t.T/Echo', echo],
      ['/t.T/Metadata', metadata],
    ] as [string, Method<unknown, unknown>][]);
    server = createGrpcServer({ methods, maxMessageBytes: 64_000, sessionBufferBytes: 100_000 });
    port = await server.listen('127.0.0.1', 0);
  });
  afterAll(() => server.shutdown(100));

  test('a method reads the metadata of its call, -bin values as sent (base64)', async () => {
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set('x-custom', 'yes');
      md.set('x-trace-bin', Buffer.from([0, 1, 0xff]));
      const answer = await bytesCall(client, '/t.T/Metadata', Buffer.alloc(0), md);
      expect(JSON.parse(answer.bytes!.toString())).toEqual(['yes', Buffer.from([0, 1, 0xff]).toString('base64').replace(/=+$/, ''), '/t.T/Metadata']);
    } finally {
      client.close();
    }
  });

  test('messages that never complete: refused from their prefix once the connection holds its budget, room again when they go', async () => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const open = [0, 1].map(() => s.request({ ...GRPC_HEADERS, ':path': '/t.T/Echo' }, { endStream: false }));
      for (const req of open) {
        req.on('error', () => {});
        req.write(Buffer.concat([Buffer.from([0, 0, 0, 0xb0, 0x00]), Buffer.alloc(10)])); // 45,056 bytes announced, 10 sent
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const third = await rawRequest(s, { ':path': '/t.T/Echo' }, [frame(Buffer.alloc(20_000))]);
      expect([third.grpcStatus, third.grpcMessage]).toEqual([
        grpc.status.RESOURCE_EXHAUSTED,
        'the connection holds more than 100000 bytes of requests and unread responses',
      ]);
      for (const req of open) req.close(http2.constants.NGHTTP2_CANCEL);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const after = await rawRequest(s, { ':path': '/t.T/Echo' }, [frame(Buffer.alloc(20_000))]);
      expect([after.grpcStatus, after.data.length]).toEqual([0, 20_005]);
    } finally {
      s.close();
    }
  });

  test('a client that never reads its answers: refused once its unread responses pass the budget', async () => {
    // A receive window of 0: no DATA frame can reach this client, every answer stays queued.
    const s = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 0 } });
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => {
          const req = s.request({ ...GRPC_HEADERS, ':path': '/t.T/Echo' }, { endStream: false });
          req.on('error', () => {});
          req.end(frame(Buffer.alloc(1))); // asks for a 40 kB answer
          return new Promise<string>((resolve) => req.on('response', (headers) => resolve(String(headers['grpc-status'] ?? 'headers, message queued'))));
        }),
      );
      // Two answers (80 kB) fit the 100 kB budget and wait for the client; the rest are refused.
      const counts: Record<string, number> = {};
      for (const a of answers) counts[a] = (counts[a] ?? 0) + 1;
      expect(counts).toEqual({ 'headers, message queued': 2, [String(grpc.status.RESOURCE_EXHAUSTED)]: 8 });
    } finally {
      s.destroy();
    }
  });
});

describe('Python grpcio', () => {
  (pythonHasGrpc ? test : test.skip)(
    `every case${pythonHasGrpc ? '' : ' — SKIPPED: python3-grpcio is not installed (.ci/run installs it)'}`,
    async () => {
      const { stdout } = await promisify(execFile)(PYTHON, [path.join(__dirname, '..', 'fixtures', 'python_conformance.py'), address], { encoding: 'utf8' });
      expect(JSON.parse(stdout)).toEqual({
        handel: '200',
        handle: '200',
        metadata: '200',
        gzip: '200',
        deadline: 'DEADLINE_EXCEEDED',
        cancelled: true,
        unknown_method: 'UNIMPLEMENTED',
        unknown_service: 'UNIMPLEMENTED',
        too_large: 'RESOURCE_EXHAUSTED',
        health_server: 'SERVING',
        health_rpc: 'SERVING',
        health_unknown: 'NOT_FOUND',
        watch_first: 'SERVING',
        watch_unknown: 'SERVICE_UNKNOWN',
        after_keepalive: '200',
      });
      await waitFor('the route signals of the Python deadline and cancel', () => aborted.has('py-deadline') && aborted.has('py-cancel'));
    },
    60_000,
  );
});

describe('h2load', () => {
  (h2loadPresent ? test : test.skip)(
    `2000 calls over 4 connections, 16 streams each${h2loadPresent ? '' : ' — SKIPPED: h2load is not installed (nghttp2-client)'}`,
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sy-h2load-'));
      try {
        const body = path.join(dir, 'call.bin');
        writeFileSync(body, inputFrame(echoParams()));
        const before = gateway.inFlight();
        const { stdout } = await promisify(execFile)(
          'h2load',
          [
            '-n',
            '2000',
            '-c',
            '4',
            '-m',
            '16',
            '-d',
            body,
            '-H',
            'content-type: application/grpc',
            '-H',
            'te: trailers',
            `http://${address}/rpc.RPCServer/handel`,
          ],
          { encoding: 'utf8' },
        );
        expect(stdout).toMatch(/requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored/);
        expect(stdout).toMatch(/status codes: 2000 2xx/);
        expect(gateway.inFlight()).toBe(before);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
