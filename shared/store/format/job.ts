// The job payload stored in Redis, its one owner in TypeScript (the Lua side: the helpers of
// scripts/helpers/format/): compact JSON a person can read with redis-cli. The routing fields
// come first, always in this order, so the scripts read them without decoding the caller's
// content (routeOf):
//   {["attempt":N,]"id":"…","at":<ms>,"level":1|2[,"policy":"last"|"discard"][,"key":"…"]
//    [,"group":"<g>"][,"ttl":<ms>][,"timeout":<ms>][,"attempts":N][,"backoff":<ms>]
//    [,"trace":"<traceparent>"[,"tracestate":"…"]][,"links":["<traceparent>",…]],"method":"…","url":"…"
//    [,"headers":{…}][,"content":…]}
// "group" is the tenant (shared/groups.ts: plain ASCII, never escaped); absent: the default group.
// "trace" is the PRODUCER span's context (written only while tracing is on at the gateway);
// "links" the contexts of the `last` messages this one superseded, newest first, at most
// MAX_LINKS (carried over by the enqueue script, helpers/format/carryLinks.lua).
// Defaults are left out to keep memory per waiting job small: policy `execute`, attempt 1, no
// headers, no content. "attempt" is written by the scripts (retries, recovery); "at", the
// enqueue time, is stamped by the enqueue script on Redis's clock (the gateway writes 0), in
// milliseconds since AT_EPOCH_MS (11 digits until 2029, where Unix milliseconds take 13). A
// payload stored before that change holds Unix milliseconds: atMs reads both (below 10^12 is
// since the epoch, until 2057).
import { randomBytes } from 'node:crypto';
import type { CallRequest } from '../../call/params';
import type { Level, Policy } from '../../levels';
import type { TraceCarrier } from '../../trace';

/** At most this many superseded messages' contexts ride with a `last` message (carryLinks.lua keeps to it). */
export const MAX_LINKS = 8;

export interface Job {
  id: string;
  level: Level;
  policy: Policy;
  key: string | null;
  /** The tenant; null: the default group. */
  group: string | null;
  url: string;
  method: string;
  headers: Record<string, string>;
  content: unknown;
  attempt: number;
  /** Enqueue time, Redis ms (Unix; decoded from the stored form by atMs). */
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
  /** The context the job was queued in (its PRODUCER span), when tracing was on. */
  trace?: TraceCarrier;
  /** The contexts of the `last` messages it superseded, newest first. */
  links?: string[];
}

/** 2026-01-01T00:00:00Z: the payload's "at" counts from here (helpers/format/atMs.lua, atStamp.lua). */
export const AT_EPOCH_MS = 1_767_225_600_000;
/** A stored "at" at or above this is Unix milliseconds (a payload written before the epoch form). */
const UNIX_MS_FROM = 1e12;

/** The enqueue time in Unix ms of a payload's stored "at" (either form; 0, not stamped, stays 0). */
export function atMs(stored: number): number {
  return stored > 0 && stored < UNIX_MS_FROM ? stored + AT_EPOCH_MS : stored;
}

/** The "at" the enqueue script stores for Unix ms `ms` (atStamp.lua; Unix ms for a clock before the epoch). */
export function storedAt(ms: number): number {
  return ms > AT_EPOCH_MS ? ms - AT_EPOCH_MS : ms;
}

// Never a leading '-': an id is given to the command line as a word (`switchyard job <id>`), where
// it would read as a flag.
const processTag = randomBytes(6).toString('base64url').replace(/^-/, 'A');
let sequence = 0;

/** Unique across processes: 8 random characters per process, then a counter. */
export function newJobId(): string {
  sequence += 1;
  return processTag + sequence.toString(36);
}

export function encodeJob(id: string, call: CallRequest, trace?: TraceCarrier): string {
  const q = call.queue!;
  let json = `{"id":"${id}","at":0,"level":${q.level}`;
  if (q.policy !== 'execute') json += `,"policy":"${q.policy}"`;
  if (q.policy === 'last') json += `,"key":${JSON.stringify(q.key)}`;
  if (q.group !== undefined) json += `,"group":"${q.group}"`;
  if (q.ttlMs !== undefined) json += `,"ttl":${q.ttlMs}`;
  if (call.timeoutMs !== undefined) json += `,"timeout":${call.timeoutMs}`;
  if (q.attempts !== undefined) json += `,"attempts":${q.attempts}`;
  if (q.backoffMs !== undefined) json += `,"backoff":${q.backoffMs}`;
  if (trace?.traceparent) {
    json += `,"trace":${JSON.stringify(trace.traceparent)}`;
    if (trace.tracestate) json += `,"tracestate":${JSON.stringify(trace.tracestate)}`;
  }
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
    group?: string;
    ttl?: number;
    timeout?: number;
    attempts?: number;
    backoff?: number;
    url: string;
    method: string;
    headers?: Record<string, string>;
    content?: unknown;
    attempt?: number;
    trace?: unknown;
    tracestate?: unknown;
    links?: unknown;
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
    group: typeof raw.group === 'string' ? raw.group : null,
    url: raw.url,
    method: raw.method,
    headers,
    content: raw.content ?? null,
    attempt: raw.attempt ?? 1,
    at: atMs(raw.at),
    timeoutMs: raw.timeout ?? null,
    attempts: raw.attempts ?? null,
    backoffMs: raw.backoff ?? null,
    token,
    payload,
    ...(typeof raw.trace === 'string' && {
      trace: typeof raw.tracestate === 'string' ? { traceparent: raw.trace, tracestate: raw.tracestate } : { traceparent: raw.trace },
    }),
    ...(Array.isArray(raw.links) && { links: raw.links.filter((l): l is string => typeof l === 'string').slice(0, MAX_LINKS) }),
  };
}

/** What people and views read of a stored payload: as much as can be read, nothing for garbage. */
export interface CallSummary {
  id?: string;
  level?: Level;
  policy?: Policy;
  key?: string;
  group?: string;
  url?: string;
  method?: string;
  attempt: number;
  /** Enqueue time, Redis ms (absent before the enqueue script stamped it). */
  at?: number;
}

/** Reads a payload for display (lookup, the dashboard, `switchyard queue`); never throws. */
export function readCall(payload: string): CallSummary {
  try {
    const raw = JSON.parse(payload) as Partial<
      Record<'id' | 'key' | 'group' | 'url' | 'method' | 'policy', string> & Record<'level' | 'attempt' | 'at', number>
    >;
    return {
      ...(typeof raw.id === 'string' && { id: raw.id }),
      ...((raw.level === 1 || raw.level === 2) && { level: raw.level }),
      ...(typeof raw.policy === 'string' && { policy: raw.policy as Policy }),
      ...(typeof raw.key === 'string' && { key: raw.key }),
      ...(typeof raw.group === 'string' && { group: raw.group }),
      ...(typeof raw.url === 'string' && { url: raw.url }),
      ...(typeof raw.method === 'string' && { method: raw.method }),
      attempt: typeof raw.attempt === 'number' ? raw.attempt : 1,
      ...(typeof raw.at === 'number' && raw.at > 0 && { at: atMs(raw.at) }),
    };
  } catch {
    return { attempt: 1 };
  }
}

// Reading as the scripts read. These work on byte strings (a Redis reply read as a Buffer and
// decoded as latin1, one character per byte), so a key is compared byte for byte as Redis
// compares it: the state checker (shared/store/check/) sees a job exactly as the scripts do.

/** The routing fields the scripts read from a payload's fixed prefix (routeOf.lua). */
export interface Route {
  id: string;
  at: number;
  level: Level;
  policy: Policy;
  /** `last` only: the coalescing key, as bytes (the scripts' decoding of the JSON string). */
  key?: string;
  /** The tenant (its bytes as written: a group name is plain ASCII); absent: the default group. */
  group?: string;
  attempt: number;
  ttl?: number;
  attempts?: number;
}

const HEX4 = /^[0-9A-Fa-f]{4}$/;

/**
 * Decodes one JSON string literal s[i..j] (quotes included) as Redis's cjson does: escapes
 * become UTF-8, raw bytes stay as they are, a lone UTF-16 surrogate is an error. Null when
 * cjson would refuse it. Without a backslash the scripts take the raw bytes between the quotes.
 */
export function jsonString(s: string, i: number, j: number): string | null {
  const raw = s.slice(i + 1, j);
  if (!raw.includes('\\')) return raw;
  if (s[i] !== '"' || s[j] !== '"') return null;
  let out = '';
  for (let k = 0; k < raw.length; k++) {
    const c = raw[k];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = raw[++k];
    const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
    if (e in simple) {
      out += simple[e];
      continue;
    }
    if (e !== 'u' || !HEX4.test(raw.slice(k + 1, k + 5))) return null;
    let code = parseInt(raw.slice(k + 1, k + 5), 16);
    k += 4;
    if (code >= 0xdc00 && code <= 0xdfff) return null;
    if (code >= 0xd800 && code <= 0xdbff) {
      if (raw.slice(k + 1, k + 3) !== '\\u' || !HEX4.test(raw.slice(k + 3, k + 7))) return null;
      const low = parseInt(raw.slice(k + 3, k + 7), 16);
      if (low < 0xdc00 || low > 0xdfff) return null;
      code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
      k += 6;
    }
    out += Buffer.from(String.fromCodePoint(code), 'utf8').toString('latin1');
  }
  return out;
}

/** Index of the quote closing the JSON string that opens at index i, or -1 (jsonStringEnd.lua). */
export function jsonStringEnd(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const quote = s.indexOf('"', j);
    const slash = s.indexOf('\\', j);
    const k = quote === -1 ? slash : slash === -1 ? quote : Math.min(quote, slash);
    if (k === -1) return -1;
    if (s[k] === '"') return k;
    j = k + 2;
  }
}

const ATTEMPT = /^\{"attempt":(\d+),/;
const HEAD = /^"id":"([A-Za-z0-9_-]+)","at":(\d+),"level":([12])/;
const POLICY = /^,"policy":"([A-Za-z]+)"/;
const GROUP = /^,"group":"([A-Za-z0-9_.:@/+=-]{1,64})"/;
const TTL = /^,"ttl":(\d+)/;
const TIMEOUT = /^,"timeout":\d+/;
const ATTEMPTS = /^,"attempts":(\d+)/;

/** The routing fields of a payload as routeOf.lua reads them; null where the scripts read none. */
export function routeOf(payload: string): Route | null {
  const attempt = ATTEMPT.exec(payload);
  let p = attempt ? attempt[0].length : 1;
  const head = HEAD.exec(payload.slice(p));
  if (!head) return null;
  p += head[0].length;
  const route: Route = {
    id: head[1],
    at: atMs(Number(head[2])),
    level: Number(head[3]) as Level,
    policy: 'execute',
    attempt: attempt ? Number(attempt[1]) : 1,
  };
  const policy = POLICY.exec(payload.slice(p));
  if (policy) {
    if (policy[1] !== 'last' && policy[1] !== 'discard') return null;
    route.policy = policy[1];
    p += policy[0].length;
  }
  if (route.policy === 'last') {
    if (payload.slice(p, p + 7) !== ',"key":') return null;
    const close = jsonStringEnd(payload, p + 7);
    if (close === -1) return null;
    const key = jsonString(payload, p + 7, close);
    if (key === null) return null;
    route.key = key;
    p = close + 1;
  }
  const group = GROUP.exec(payload.slice(p));
  if (group) {
    route.group = group[1];
    p += group[0].length;
  }
  const ttl = TTL.exec(payload.slice(p));
  if (ttl) {
    route.ttl = Number(ttl[1]);
    p += ttl[0].length;
  }
  const timeout = TIMEOUT.exec(payload.slice(p));
  if (timeout) p += timeout[0].length;
  const attempts = ATTEMPTS.exec(payload.slice(p));
  if (attempts) route.attempts = Number(attempts[1]);
  return route;
}

/** The id of a payload as jobId.lua reads it (the first "id" field before any nested object). */
export function jobIdOf(payload: string): string | null {
  return /^\{[^{]*?"id":"([A-Za-z0-9_-]+)"/.exec(payload)?.[1] ?? null;
}
