// Clients that share no code with the server get the same answers as the TypeScript client:
// Node's bare http2 with gRPC framing and protobuf written by hand, and Python's grpcio.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import http2 from 'node:http2';
import path from 'node:path';
import Router from '@koa/router';
import Koa from 'koa';
import { closeClients, rawCall } from '../../client';
import { createGateway, type Gateway } from '../../server/gateway';
import { toLoadedApp } from '../../shared/call/app';

const PYTHON = '/usr/bin/python3';
const pythonHasGrpc = spawnSync(PYTHON, ['-c', 'import grpc']).status === 0;

const CASES = [
  '{"url":"/things/1?x=2","method":"GET"}',
  '{"url":"/things","method":"POST","content":{"name":"ünïcødé ✓"}}',
  '{"url":"/nowhere","method":"GET"}',
  '{"url":"/things/1","method":"PATCH"}',
  '{"url":"/explode","method":"GET"}',
  '{"url":"/things/1"}',
  'not json at all',
];

let gateway: Gateway;
let address: string;
let expected: string[];

beforeAll(async () => {
  const router = new Router();
  router.get('/things/:id', (ctx) => {
    ctx.body = { id: ctx.params.id, query: ctx.query };
  });
  router.post('/things', (ctx) => {
    ctx.status = 201;
    ctx.body = ctx.request.body;
  });
  router.get('/explode', () => {
    throw new Error('exploded');
  });
  const app = new Koa();
  app.silent = true;
  app.use(router.routes()).use(router.allowedMethods());
  gateway = createGateway({
    app: await toLoadedApp(app),
    host: '127.0.0.1',
    port: 0,
    defaultTimeoutMs: 2000,
    maxParamsBytes: 1 << 20,
    maxBodyBytes: 1 << 19,
    debug: false,
  });
  address = `127.0.0.1:${await gateway.start()}`;
  expected = [];
  for (const params of CASES) expected.push((await rawCall(params, { address })).raw);
});

afterAll(async () => {
  closeClients();
  await gateway.stop(500);
});

test('the TypeScript client sees every status of the table', () => {
  expect(expected.map((raw) => JSON.parse(raw).status_code)).toEqual(['200', '201', '404', '405', '500', '400', '400']);
});

/** One unary gRPC call over bare HTTP/2: 5-byte frame header, hand-encoded Input. */
function http2Call(session: http2.ClientHttp2Session, params: string): Promise<string> {
  const body = Buffer.from(params, 'utf8');
  const len: number[] = [];
  for (let n = body.length; ; n >>>= 7) {
    if (n <= 0x7f) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  const message = body.length ? Buffer.concat([Buffer.from([0x0a, ...len]), body]) : Buffer.alloc(0);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(message.length, 1);
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/rpc.RPCServer/handel', 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    stream.on('trailers', (trailers) => (grpcStatus = String(trailers['grpc-status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('end', () => {
      if (grpcStatus !== '0') return reject(new Error(`grpc-status ${grpcStatus}`));
      const raw = Buffer.concat(chunks).subarray(5);
      // Output: tag 0x0a, varint length, utf-8 bytes.
      let pos = 1,
        length = 0,
        shift = 0;
      for (;;) {
        const b = raw[pos++];
        length |= (b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
      }
      resolve(raw.subarray(pos, pos + length).toString('utf8'));
    });
    stream.end(Buffer.concat([frame, message]));
  });
}

test('bare HTTP/2 with hand-framed gRPC gets the same answers', async () => {
  const session = http2.connect(`http://${address}`);
  try {
    const answers = [];
    for (const params of CASES) answers.push(await http2Call(session, params));
    expect(answers).toEqual(expected);
  } finally {
    session.close();
  }
});

(pythonHasGrpc ? test : test.skip)(
  `Python grpcio (${PYTHON}) gets the same answers${pythonHasGrpc ? '' : ' — SKIPPED: python3-grpcio is not installed (.ci/run installs it)'}`,
  async () => {
    // Asynchronously: the gateway answers from this same process.
    const { stdout: out } = await promisify(execFile)(PYTHON, [path.join(__dirname, '..', 'fixtures', 'python_client.py'), address, ...CASES], {
      encoding: 'utf8',
    });
    expect(out.trimEnd().split('\n')).toEqual(expected);
  },
);
