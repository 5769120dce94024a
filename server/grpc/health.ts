// grpc.health.v1.Health (grpc/doc/health-checking.md): Check answers a service's status, or
// NOT_FOUND for a service it does not know; Watch streams the current status, then each change
// (SERVICE_UNKNOWN for a service it does not know, which may become known later).
import { decodeStringField1 } from '../../shared/call/wire';
import { type GrpcCall, type Method } from './call';
import { Status } from './status';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

const ENUM: Record<ServingStatus, number> = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 };

/** HealthCheckResponse { ServingStatus status = 1; } (the default, UNKNOWN, is the empty message). */
function encodeResponse(status: ServingStatus, reserve: number): Buffer {
  const value = ENUM[status];
  const out = Buffer.alloc(reserve + (value === 0 ? 0 : 2));
  if (value !== 0) {
    out[reserve] = 0x08;
    out[reserve + 1] = value;
  }
  return out;
}

type HealthCall = GrpcCall<string, ServingStatus>;

export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<HealthCall>>();

  constructor(initial: Record<string, ServingStatus>) {
    for (const [service, status] of Object.entries(initial)) this.statuses.set(service, status);
  }

  /** Sets a service's status ('' is the server as a whole); its watchers are sent the change. */
  setStatus(service: string, status: ServingStatus): void {
    const before = this.statuses.get(service);
    this.statuses.set(service, status);
    if (before === status) return;
    for (const call of this.watchers.get(service) ?? []) call.send(status);
  }

  /** Ends every Watch with UNAVAILABLE (the server is stopping; their last message said NOT_SERVING). */
  endWatches(): void {
    for (const calls of this.watchers.values()) for (const call of calls) call.finish(Status.UNAVAILABLE, 'the server is shutting down');
    this.watchers.clear();
  }

  /** The service's two methods, by path. */
  methods(): [string, Method<string, ServingStatus>][] {
    const check: Method<string, ServingStatus> = {
      auth: false,
      decode: decodeStringField1,
      encode: encodeResponse,
      handle: (call) => {
        const status = this.statuses.get(call.request);
        if (status === undefined) call.finish(Status.NOT_FOUND, `unknown service ${call.request}`);
        else call.respond(status);
      },
    };
    const watch: Method<string, ServingStatus> = {
      ...check,
      handle: (call) => {
        const service = call.request;
        let calls = this.watchers.get(service);
        if (!calls) this.watchers.set(service, (calls = new Set()));
        const watching = calls;
        watching.add(call);
        call.onCancel = { abort: () => watching.delete(call) };
        call.send(this.statuses.get(service) ?? 'SERVICE_UNKNOWN');
      },
    };
    return [
      ['/grpc.health.v1.Health/Check', check],
      ['/grpc.health.v1.Health/Watch', watch],
    ];
  }
}
