// The gateway: a grpc-js server with RPCServer (handel + handle) and grpc.health.v1.Health.
// Built without binding (testable); start() binds, stop() drains in-flight calls.
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { log } from '../shared/ops/log';
import { rpcServiceDefinition, type Input, type Output } from '../shared/call/wire';
import { createRpcHandler, type RpcServiceOptions } from './rpc-service';

export interface GatewayOptions extends RpcServiceOptions {
  host: string;
  port: number;
  token?: string;
  tls?: { cert: string; key: string; ca?: string };
}

export interface Gateway {
  /** Binds and serves; resolves to the bound port (useful with port 0). */
  start(): Promise<number>;
  /** Stops taking calls, lets those in flight answer for up to graceMs, then closes. */
  stop(graceMs: number): Promise<void>;
  /** Calls received and not yet answered. */
  inFlight(): number;
  readonly health: HealthImplementation;
}

const SERVICE_NAME = 'rpc.RPCServer';

// grpc-js's own messages join the process log instead of going to stderr in a format of their own.
grpc.setLogger({
  error: (...args: unknown[]) => log.warn({ event: 'grpc' }, args.join(' ')),
  info: (...args: unknown[]) => log.debug({ event: 'grpc' }, args.join(' ')),
  debug: (...args: unknown[]) => log.trace({ event: 'grpc' }, args.join(' ')),
});

function withBearerToken(token: string, handler: grpc.handleUnaryCall<Input, Output>): grpc.handleUnaryCall<Input, Output> {
  const expected = Buffer.from(`Bearer ${token}`);
  return (call, callback) => {
    const given = Buffer.from(String(call.metadata.get('authorization')[0] ?? ''));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      callback({ code: grpc.status.UNAUTHENTICATED, details: 'missing or wrong bearer token' });
      return;
    }
    handler(call, callback);
  };
}

function serverCredentials(tls: GatewayOptions['tls']): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const ca = tls.ca ? readFileSync(tls.ca) : null;
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: readFileSync(tls.cert), private_key: readFileSync(tls.key) }], ca !== null);
}

export function createGateway(options: GatewayOptions): Gateway {
  const server = new grpc.Server({
    // Room above --max-params so an oversized params gets a 400 that says so, not a transport error.
    'grpc.max_receive_message_length': options.maxParamsBytes * 2 + 1024,
    'grpc.max_send_message_length': -1,
    // Channelz bookkeeping runs on every call; nothing here reads it.
    'grpc.enable_channelz': 0,
  });
  const rpc = createRpcHandler(options);
  let handler = rpc.handle;
  if (options.token) handler = withBearerToken(options.token, handler);
  server.addService(rpcServiceDefinition, { handel: handler, handle: handler });

  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  health.addToServer(server);

  return {
    health,
    inFlight: rpc.inFlight,
    async start() {
      const port = await new Promise<number>((resolve, reject) => {
        server.bindAsync(`${options.host}:${options.port}`, serverCredentials(options.tls), (err, bound) => (err ? reject(err) : resolve(bound)));
      });
      health.setStatus('', 'SERVING');
      health.setStatus(SERVICE_NAME, 'SERVING');
      return port;
    },
    async stop(graceMs) {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
