// The package entry: the typed client, and the types a route author needs. Loading it loads
// the client and the wire codec only (grpc-js), never the gateway or the worker.
export { call, send, rawCall, closeClients, type Answer, type CallOptions, type QueuedAnswer, type SendOptions } from './client';
export type { RpcState } from './shared/call/rpc-state';
export type { Level, Policy } from './shared/levels';
