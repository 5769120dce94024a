// The gateway: a grpc-js server with RPCServer (handel + handle) and grpc.health.v1.Health.
// Built without binding (testable); start() binds, stop() drains in-flight calls.
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { log } from '../shared/log';
import { rpcServiceDefinition } from '../shared/call/wire';
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

/**
 * Checks the bearer token on the call's headers, before its message is read: a call without the
 * token is answered UNAUTHENTICATED at once and its body is never buffered (grpc-js keeps the
 * stream paused until the handler asks for the message, and drops what arrives after the status).
 * The health service needs no token.
 */
function bearerTokenInterceptor(token: string): grpc.ServerInterceptor {
  const expected = Buffer.from(`Bearer ${token}`);
  const authorized = (metadata: grpc.Metadata): boolean => {
    const given = Buffer.from(String(metadata.get('authorization')[0] ?? ''));
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  return (method, call) => {
    if (!method.path.startsWith(`/${SERVICE_NAME}/`)) return new grpc.ServerInterceptingCall(call);
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, pass) {
            if (authorized(metadata)) pass(metadata);
            else call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'missing or wrong bearer token' });
          },
        });
      },
    });
  };
}

/**
 * The largest Input message: the params text plus its protobuf framing (a 1-byte tag and a
 * length of at most 5 bytes). grpc-js refuses a larger message from its 5-byte length prefix,
 * with RESOURCE_EXHAUSTED, before reading it; only that is possible above this limit.
 */
export function maxInputBytes(maxParamsBytes: number): number {
  return maxParamsBytes + 6;
}

function serverCredentials(tls: GatewayOptions['tls']): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const ca = tls.ca ? readFileSync(tls.ca) : null;
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: readFileSync(tls.cert), private_key: readFileSync(tls.key) }], ca !== null);
}

export function createGateway(options: GatewayOptions): Gateway {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxInputBytes(options.maxParamsBytes),
    'grpc.max_send_message_length': -1,
    // Channelz bookkeeping runs on every call; nothing here reads it.
    'grpc.enable_channelz': 0,
    interceptors: options.token ? [bearerTokenInterceptor(options.token)] : [],
  });
  const rpc = createRpcHandler(options);
  server.addService(rpcServiceDefinition, { handel: rpc.handle, handle: rpc.handle });

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
