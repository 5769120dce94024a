// The job payload stored in Redis: compact JSON a person can read with redis-cli
// (`{"id":"…","level":1,"method":"POST","url":"/users/42",…}`). Defaults are left out to keep
// memory per waiting job small: policy `execute`, attempt 1, no headers, no content.
// An "attempt" field, when present, comes first: the Lua scripts rewrite it in place.
import { randomBytes } from 'node:crypto';
import type { CallRequest, Level, Policy } from '../call/params';

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
  /** Epoch ms after which the job is dropped instead of run (from queue_detail.ttl). */
  expires: number | null;
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

export function encodeJob(id: string, call: CallRequest, now: number): string {
  const q = call.queue!;
  let json = `{"id":"${id}","level":${q.level},"method":"${call.method}","url":${JSON.stringify(call.url)}`;
  if (q.policy !== 'execute') json += `,"policy":"${q.policy}"`;
  if (q.policy === 'last') json += `,"key":${JSON.stringify(q.key)}`;
  if (q.ttlMs !== undefined) json += `,"expires":${now + q.ttlMs}`;
  for (const _ in call.headers) {
    json += `,"headers":${JSON.stringify(call.headers)}`;
    break;
  }
  if (call.content !== null && call.content !== undefined) json += `,"content":${JSON.stringify(call.content)}`;
  return json + '}';
}

export function decodeJob(payload: string): Job {
  const raw = JSON.parse(payload) as {
    id: string; level: Level; policy?: Policy; key?: string; url: string; method: string;
    headers?: Record<string, string>; content?: unknown; attempt?: number; expires?: number;
  };
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
    expires: raw.expires ?? null,
    payload,
  };
}

/** The payload of the next attempt: same JSON with the leading attempt count replaced. */
export function withAttempt(payload: string, attempt: number): string {
  if (payload.startsWith('{"attempt":')) return payload.replace(/^\{"attempt":\d+/, `{"attempt":${attempt}`);
  return `{"attempt":${attempt},${payload.slice(1)}`;
}

/** A dead-letter entry: when and why it failed, then the job verbatim (last field). */
export function deadEntry(job: Job, status: number | null, error: string, now: number): string {
  return `{"failedAt":${now},"attempts":${job.attempt},"status":${status === null ? 'null' : `"${status}"`},"error":${JSON.stringify(error)},"job":${job.payload}}`;
}
