// Every failure Switchyard itself reports to a caller, in one catalogue: a code, the status it
// answers and the message the caller reads. `replyFor` is the one boundary where an error
// becomes Output.content; anything that is not a SwitchyardError answers a bare 500 there
// (its message goes to the log, never to the caller).
import { STATUS_CODES } from 'node:http';
import type { Reply } from './output';

const CATALOGUE = {
  BAD_PARAMS: { status: 400 },
  NO_ROUTE: { status: 404 },
  METHOD_NOT_ALLOWED: { status: 405 },
  LEVEL2_REFUSED: { status: 409, state: 'refused' },
  DISCARD_DROPPED: { status: 409, state: 'dropped' },
  // A 503 says what is known about the job: never queued, maybe queued, or refused by a full Redis.
  QUEUE_NOT_QUEUED: { status: 503 },
  QUEUE_OUTCOME_UNKNOWN: { status: 503 },
  QUEUE_FULL: { status: 503 },
  SYNC_DEADLINE: { status: 504 },
  JOB_DEADLINE: { status: 504 },
} as const satisfies Record<string, { status: number; state?: string }>;

export type ErrorCode = keyof typeof CATALOGUE;

export class SwitchyardError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SwitchyardError';
    this.status = CATALOGUE[code].status;
  }
}

/** The one place an error becomes what the caller reads. */
export function replyFor(err: unknown): Reply {
  if (!(err instanceof SwitchyardError)) {
    return { status: 500, data: STATUS_CODES[500], error: (err as Error)?.message ?? String(err) };
  }
  const entry: { status: number; state?: string } = CATALOGUE[err.code];
  return { status: entry.status, data: entry.state ? { state: entry.state, message: err.message } : err.message, error: err.message };
}

export const badParams = (field: string, problem: string): SwitchyardError => new SwitchyardError('BAD_PARAMS', `${field}: ${problem}`);
export const noRoute = (method: string, path: string): SwitchyardError => new SwitchyardError('NO_ROUTE', `no route matches ${method} ${path}`);
export const methodNotAllowed = (method: string, path: string, allowed: string): SwitchyardError =>
  new SwitchyardError('METHOD_NOT_ALLOWED', `method ${method} is not allowed on ${path} (allowed: ${allowed || 'none'})`);
export const level2Refused = (): SwitchyardError => new SwitchyardError('LEVEL2_REFUSED', 'queue of status level2 is not active');
export const discardDropped = (level: number, threshold: number): SwitchyardError =>
  new SwitchyardError('DISCARD_DROPPED', `discardable message dropped: level ${level} backlog is at or over the discard threshold (${threshold})`);
// The 503s. The cause (ioredis' own words) goes to the log; the caller reads ours, and each
// message starts with what is known about the job ("not queued", "outcome unknown").
/** Nothing was sent to Redis (no connection in time, or Redis refused the command before running it): safe to send again. */
export const notQueued = (why: string): SwitchyardError => new SwitchyardError('QUEUE_NOT_QUEUED', `queue unavailable: not queued: ${why}`);
/** Sent, but no answer came in time (or the connection dropped meanwhile): the job may be queued. */
export const outcomeUnknown = (why: string): SwitchyardError =>
  new SwitchyardError(
    'QUEUE_OUTCOME_UNKNOWN',
    `queue unavailable: outcome unknown: ${why}; the job may or may not have been queued (send it again with the same queue_detail.id to be safe)`,
  );
/** Redis is at maxmemory and refuses new jobs (workers keep draining it). */
export const queueFull = (): SwitchyardError => new SwitchyardError('QUEUE_FULL', 'queue unavailable: Redis is full (maxmemory): not queued');
/** Durable enqueue: the master took the job, fewer replicas than asked confirmed it in time. */
export const notReplicated = (acknowledged: number, asked: number, timeoutMs: number): SwitchyardError =>
  new SwitchyardError(
    'QUEUE_OUTCOME_UNKNOWN',
    `queue unavailable: only ${acknowledged} of ${asked} replica(s) confirmed the job within ${timeoutMs} ms; it may or may not have been queued (a failover now could lose it; send it again with the same queue_detail.id to be safe)`,
  );
export const noQueueConfigured = (): SwitchyardError => notQueued('this gateway has no Redis configured');
export const syncDeadline = (ms: number): SwitchyardError => new SwitchyardError('SYNC_DEADLINE', `deadline of ${ms} ms passed before the route answered`);
export const jobDeadline = (ms: number): SwitchyardError => new SwitchyardError('JOB_DEADLINE', `job deadline of ${ms} ms passed before the route answered`);
