// The gateway: a gRPC server on node:http2 (server/grpc/) with RPCServer (handel + handle) and
// grpc.health.v1.Health. Built without binding (testable); start() binds, stop() drains in-flight calls.
import { readFileSync } from 'node:fs';
import { decodeStringField1, encodeStringField1 } from '../shared/call/wire';
import { type Method } from './grpc/call';
import { HealthService } from './grpc/health';
import { createGrpcServer, type GrpcServer } from './grpc/server';
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
  readonly health: HealthService;
}

const SERVICE_NAME = 'rpc.RPCServer';

/**
 * The largest Input message: the params text plus its protobuf framing (a 1-byte tag and a
 * length of at most 5 bytes). A larger message is refused from its 5-byte gRPC length prefix,
 * with RESOURCE_EXHAUSTED, before it is read; only that is possible above this limit.
 */
export function maxInputBytes(maxParamsBytes: number): number {
  return maxParamsBytes + 6;
}

export function createGateway(options: GatewayOptions): Gateway {
  const rpc = createRpcHandler(options);
  // Input.params in, Output.content out: the RpcCall of rpc-service.ts is this call's own shape.
  const rpcMethod: Method<string, string> = {
    auth: true,
    decode: decodeStringField1,
    encode: encodeStringField1,
    handle: rpc.handle,
  };
  const health = new HealthService({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  const methods = new Map<string, Method<unknown, unknown>>([
    [`/${SERVICE_NAME}/handel`, rpcMethod],
    [`/${SERVICE_NAME}/handle`, rpcMethod],
    ...health.methods(),
  ] as [string, Method<unknown, unknown>][]);
  // Made by start(): the certificate files are read when the gateway binds.
  let server: GrpcServer | undefined;
  return {
    health,
    inFlight: rpc.inFlight,
    async start() {
      const tls = options.tls;
      server = createGrpcServer({
        methods,
        maxMessageBytes: maxInputBytes(options.maxParamsBytes),
        token: options.token,
        tls: tls && { cert: readFileSync(tls.cert), key: readFileSync(tls.key), ca: tls.ca ? readFileSync(tls.ca) : undefined },
      });
      const port = await server.listen(options.host, options.port);
      health.setStatus('', 'SERVING');
      health.setStatus(SERVICE_NAME, 'SERVING');
      return port;
    },
    async stop(graceMs) {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(SERVICE_NAME, 'NOT_SERVING');
      health.endWatches();
      await server?.shutdown(graceMs);
    },
  };
}
