// The job payload stored in Redis: compact JSON a person can read with redis-cli. The routing
// fields come first, always in this order, so the Lua scripts read them without decoding the
// caller's content (scripts/helpers/routeOf.lua):
//   {["attempt":N,]"id":"…","at":<ms>,"level":1|2[,"policy":"last"|"discard"][,"key":"…"]
//    [,"ttl":<ms>][,"timeout":<ms>][,"attempts":N][,"backoff":<ms>],"method":"…","url":"…"
//    [,"headers":{…}][,"content":…]}
// Defaults are left out to keep memory per waiting job small: policy `execute`, attempt 1, no
// headers, no content. "attempt" is written by the scripts (retries, recovery); "at", the
// enqueue time, is stamped by the enqueue script on Redis's clock (the gateway writes 0).
import { randomBytes } from 'node:crypto';
import type { CallRequest } from '../call/params';
import type { Level, Policy } from '../levels';

export interface Job {
  id: string;
  level: Level;
  policy: Policy;
  key: string | null;
  url: string;
  method: string;
  headers: Record<string, string>;
  content: unknown;
  attempt: number;
  /** Enqueue time, Redis ms. */
  at: number;
  /** The run's deadline asked by the caller (its `timeout`, or queue_detail.job_timeout), if any. */
  timeoutMs: number | null;
  /** The caller's own --attempts and --backoff for this job, if any. */
  attempts: number | null;
  backoffMs: number | null;
  /** This run's token: recorded with the run in Redis, and the route's fencing token. */
  token: number;
  /** The payload exactly as stored. */
  payload: string;
}

const processTag = randomBytes(6).toString('base64url');
let sequence = 0;

/** Unique across processes: 8 random characters per process, then a counter. */
export function newJobId(): string {
  sequence += 1;
  return processTag + sequence.toString(36);
}

export function encodeJob(id: string, call: CallRequest): string {
  const q = call.queue!;
  let json = `{"id":"${id}","at":0,"level":${q.level}`;
  if (q.policy !== 'execute') json += `,"policy":"${q.policy}"`;
  if (q.policy === 'last') json += `,"key":${JSON.stringify(q.key)}`;
  if (q.ttlMs !== undefined) json += `,"ttl":${q.ttlMs}`;
  if (call.timeoutMs !== undefined) json += `,"timeout":${call.timeoutMs}`;
  if (q.attempts !== undefined) json += `,"attempts":${q.attempts}`;
  if (q.backoffMs !== undefined) json += `,"backoff":${q.backoffMs}`;
  json += `,"method":"${call.method}","url":${JSON.stringify(call.url)}`;
  for (const _ in call.headers) {
    json += `,"headers":${JSON.stringify(call.headers)}`;
    break;
  }
  if (call.content !== null && call.content !== undefined) json += `,"content":${JSON.stringify(call.content)}`;
  return json + '}';
}

export function decodeJob(token: number, payload: string): Job {
  const raw = JSON.parse(payload) as {
    id: string;
    at: number;
    level: Level;
    policy?: Policy;
    key?: string;
    ttl?: number;
    timeout?: number;
    attempts?: number;
    backoff?: number;
    url: string;
    method: string;
    headers?: Record<string, string>;
    content?: unknown;
    attempt?: number;
  };
  if (typeof raw.id !== 'string' || (raw.level !== 1 && raw.level !== 2) || typeof raw.url !== 'string' || typeof raw.method !== 'string') {
    throw new Error('not a job payload (id, level, url or method missing)');
  }
  const headers: Record<string, string> = Object.create(null);
  if (raw.headers) for (const name of Object.keys(raw.headers)) headers[name] = raw.headers[name];
  return {
    id: raw.id,
    level: raw.level,
    policy: raw.policy ?? 'execute',
    key: raw.key ?? null,
    url: raw.url,
    method: raw.method,
    headers,
    content: raw.content ?? null,
    attempt: raw.attempt ?? 1,
    at: raw.at,
    timeoutMs: raw.timeout ?? null,
    attempts: raw.attempts ?? null,
    backoffMs: raw.backoff ?? null,
    token,
    payload,
  };
}
