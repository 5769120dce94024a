// The typed client: call() for sync calls, send() for async ones, both speaking the wire protocol of docs/protocol.md.
import * as grpc from '@grpc/grpc-js';
import { rpcServiceDefinition, type Input, type Output } from '../shared/call/wire';

export interface CallOptions {
  /** Gateway address, `host:port` (default SWITCHYARD_ADDRESS or localhost:50051). */
  address?: string;
  method?: string;
  headers?: Record<string, string>;
  content?: unknown;
  /** Sync deadline in seconds; also sets the gRPC deadline (plus one second of slack). */
  timeout?: number;
  /** Bearer token, when the gateway runs with --token. */
  token?: string;
  /** Channel credentials for a TLS gateway (default: insecure). */
  credentials?: grpc.ChannelCredentials;
}

export interface SendOptions extends Omit<CallOptions, 'timeout'> {
  level?: 1 | 2;
  policy?: 'execute' | 'last' | 'discard';
  key?: string;
  /** Seconds a queued message may wait before it is dropped. */
  ttl?: number;
  /**
   * Your own id for the job ([A-Za-z0-9_-], at most 100): sending the call again with it (after
   * a 503 whose outcome is unknown) answers `duplicate` instead of queuing the job twice.
   */
  id?: string;
  /** This job's runs before it is dead, first retry delay (seconds), run deadline (seconds), and delay before it may run (seconds). */
  attempts?: number;
  backoff?: number;
  jobTimeout?: number;
  delay?: number;
  /** gRPC deadline of the enqueue call, in seconds (default 10). */
  deadline?: number;
}

export interface Answer<T = unknown> {
  /** The application status (`status_code` as a number). */
  status: number;
  data: T;
  /** The raw Output.content text. */
  raw: string;
}

export type QueuedAnswer = Answer<{ id?: string; state?: string; message?: string } | string>;

type RawClient = grpc.Client & {
  handel(input: Input, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, output?: Output) => void): grpc.ClientUnaryCall;
};

const RpcClient = grpc.makeGenericClientConstructor(rpcServiceDefinition, 'RPCServer');
const clients = new Map<string, RawClient>();
/** Channels are cached per address and credentials object, so a TLS caller reuses its connection too. */
const credentialIds = new WeakMap<grpc.ChannelCredentials, number>();
let credentialCount = 0;

function clientFor(address: string, credentials?: grpc.ChannelCredentials): RawClient {
  let cacheKey = address;
  if (credentials) {
    let id = credentialIds.get(credentials);
    if (id === undefined) credentialIds.set(credentials, (id = ++credentialCount));
    cacheKey = `${address}#${id}`;
  }
  let client = clients.get(cacheKey);
  if (!client) {
    client = new RpcClient(address, credentials ?? grpc.credentials.createInsecure()) as unknown as RawClient;
    clients.set(cacheKey, client);
  }
  return client;
}

/** Sends raw Input.params and returns the parsed Output.content. */
export function rawCall(
  params: string,
  options: { address?: string; token?: string; deadlineSeconds?: number; credentials?: grpc.ChannelCredentials } = {},
): Promise<Answer> {
  const address = options.address ?? process.env.SWITCHYARD_ADDRESS ?? 'localhost:50051';
  const metadata = new grpc.Metadata();
  if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
  const deadline = Date.now() + (options.deadlineSeconds ?? 10) * 1000;
  return new Promise((resolve, reject) => {
    clientFor(address, options.credentials).handel({ params }, metadata, { deadline }, (err, output) => {
      if (err) return reject(err);
      const raw = output?.content ?? '';
      try {
        const parsed = JSON.parse(raw) as { status_code: string; data: unknown };
        resolve({ status: Number(parsed.status_code), data: parsed.data, raw });
      } catch {
        reject(new Error(`gateway answered Output.content that is not JSON: ${raw.slice(0, 200)}`));
      }
    });
  });
}

export function call<T = unknown>(url: string, options: CallOptions = {}): Promise<Answer<T>> {
  const params: Record<string, unknown> = { url, method: options.method ?? 'GET', reply: true };
  if (options.headers) params.headers = options.headers;
  if (options.content !== undefined) params.content = options.content;
  if (options.timeout !== undefined) params.timeout = options.timeout;
  return rawCall(JSON.stringify(params), {
    address: options.address,
    token: options.token,
    credentials: options.credentials,
    deadlineSeconds: (options.timeout ?? 30) + 1,
  }) as Promise<Answer<T>>;
}

export function send(url: string, options: SendOptions = {}): Promise<QueuedAnswer> {
  const queueDetail: Record<string, unknown> = { level: options.level ?? 1, limit_policy: options.policy ?? 'execute' };
  if (options.key !== undefined) queueDetail.key = options.key;
  if (options.ttl !== undefined) queueDetail.ttl = options.ttl;
  if (options.id !== undefined) queueDetail.id = options.id;
  if (options.attempts !== undefined) queueDetail.attempts = options.attempts;
  if (options.backoff !== undefined) queueDetail.backoff = options.backoff;
  if (options.jobTimeout !== undefined) queueDetail.job_timeout = options.jobTimeout;
  if (options.delay !== undefined) queueDetail.delay = options.delay;
  const params: Record<string, unknown> = { url, method: options.method ?? 'POST', reply: false, queue_detail: queueDetail };
  if (options.headers) params.headers = options.headers;
  if (options.content !== undefined) params.content = options.content;
  return rawCall(JSON.stringify(params), {
    address: options.address,
    token: options.token,
    credentials: options.credentials,
    deadlineSeconds: options.deadline ?? 10,
  }) as Promise<QueuedAnswer>;
}

/** Closes every cached channel (lets a script exit promptly). */
export function closeClients(): void {
  for (const client of clients.values()) client.close();
  clients.clear();
}
