// Input.params: JSON text → a validated CallRequest, or a 400 naming the offending field.
import { METHODS } from 'node:http';
import { z } from 'zod';
import { badParams } from './errors';
import { GROUP_NAME, GROUP_NAME_RULE, isGroupName } from '../groups';
import type { Level, Policy } from '../levels';

export interface QueueDetail {
  level: Level;
  policy: Policy;
  /** Coalescing key of `last` (default `METHOD url`). */
  key: string;
  /** The caller's own job id: a retry with the same id answers the job already known (`duplicate`). */
  id?: string;
  /** The tenant: groups of a level are served in turn, each within its cap and rate (docs/design.md, Tenants). */
  group?: string;
  ttlMs?: number;
  /** This job's own --attempts and --backoff. */
  attempts?: number;
  backoffMs?: number;
  /** Run no earlier than this from now. */
  delayMs?: number;
}

export interface CallRequest {
  url: string;
  /** Upper-case HTTP verb. */
  method: string;
  /** Lower-case names, prototype-free object. */
  headers: Record<string, string>;
  content: unknown;
  reply: boolean;
  timeoutMs?: number;
  queue?: QueueDetail;
}

export interface ParamsLimits {
  maxParamsBytes: number;
  maxBodyBytes: number;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** How a wrong value reads in a 400: its type, and the value itself when it is short. */
function shown(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'an array';
  if (typeof input === 'string') return `string ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`;
  if (typeof input === 'number' || typeof input === 'boolean') return `${typeof input} ${input}`;
  return typeof input === 'object' ? 'an object' : typeof input;
}

/** A zod error hook: "required" for a missing field, else what was expected and what came. */
const expected = (what: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : `expected ${what}, got ${shown(issue.input)}`);

/** A lone UTF-16 surrogate cannot be written as UTF-8: Redis would get U+FFFD instead, and the copies of a key would differ. */
const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();
const LONE_SURROGATE = 'contains a lone UTF-16 surrogate (not valid Unicode text)';

/** One rule for the schema and the hand-written check of the common shape (isCommonShape). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const URL_PATTERN = /^\/[^\s#]*$/;
const POLICIES = ['execute', 'last', 'discard'] as const;

const headerName = z
  .string()
  .regex(HEADER_NAME, 'header names are HTTP tokens')
  .refine((k) => !FORBIDDEN_KEYS.has(k.toLowerCase()), 'header name is not allowed');

/**
 * Every number of params has a finite range (JSON.parse reads `1e999` as Infinity, which zod
 * refuses as not a number). Durations are stored as whole milliseconds (the Lua scripts read
 * them with %d+), so a positive duration under 1 ms, which would round to 0, is refused too.
 */
export const RANGES = {
  timeout: { min: 0.001, max: 86_400 },
  ttl: { min: 0.001, max: 30 * 86_400 },
  attempts: { min: 1, max: 1000 },
  backoff: { min: 0.001, max: 3600 },
  job_timeout: { min: 0.001, max: 86_400 },
  delay: { min: 0, max: 30 * 86_400 },
} as const;

/** Seconds within a range of RANGES that starts at 1 ms (`maxText` says its end in words). */
const positiveSeconds = (range: { min: number; max: number }, maxText: string) =>
  z
    .number({ error: expected('a number of seconds') })
    .min(range.min, 'must be more than 0 (at least 0.001 seconds: 1 ms)')
    .max(range.max, `at most ${maxText}`);

/** The verbs Node's HTTP server accepts: a route never sees another one over HTTP, so it does not over gRPC either. */
const HTTP_METHODS = new Set(METHODS);

/** The caller's job id: the characters every script reads in an id ([%w_-]+ in Lua). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;

const schema = z.object({
  url: z
    .string({ error: expected('a string') })
    .min(1, 'must not be empty')
    .max(8192, 'longer than 8192 characters')
    .regex(URL_PATTERN, 'must be a path starting with "/" (no spaces, no fragment)'),
  method: z
    .string({ error: expected('a string') })
    .refine((m) => m.length <= 16 && HTTP_METHODS.has(m.toUpperCase()), 'must be an HTTP verb such as GET or POST'),
  headers: z.record(headerName, z.string({ error: expected('a string') }), { error: expected('an object of strings') }).optional(),
  content: z.unknown().optional(),
  reply: z.boolean({ error: expected('true or false') }).optional(),
  timeout: positiveSeconds(RANGES.timeout, '86400 seconds').optional(),
  queue_detail: z
    .object(
      {
        level: z.union([z.literal(1), z.literal(2)], { error: expected('1 or 2') }),
        limit_policy: z.enum(POLICIES, { error: expected('"execute", "last" or "discard"') }),
        key: z
          .string({ error: expected('a string') })
          .min(1, 'must not be empty')
          .max(1024, 'longer than 1024 characters')
          .optional(),
        id: z
          .string({ error: expected('a string') })
          .regex(JOB_ID_PATTERN, 'must be 1 to 100 letters, digits, "_" or "-"')
          .optional(),
        group: z
          .string({ error: expected('a string') })
          .regex(GROUP_NAME, `must be ${GROUP_NAME_RULE}`)
          .optional(),
        ttl: positiveSeconds(RANGES.ttl, '2592000 seconds (30 days)').optional(),
        attempts: z
          .number({ error: expected('a whole number of runs') })
          .int('must be a whole number')
          .min(RANGES.attempts.min, 'at least 1')
          .max(RANGES.attempts.max, 'at most 1000')
          .optional(),
        backoff: positiveSeconds(RANGES.backoff, '3600 seconds').optional(),
        job_timeout: positiveSeconds(RANGES.job_timeout, '86400 seconds').optional(),
        delay: z
          .number({ error: expected('a number of seconds') })
          .min(RANGES.delay.min, 'must not be negative')
          .max(RANGES.delay.max, 'at most 2592000 seconds (30 days)')
          .optional(),
      },
      { error: expected('an object') },
    )
    .optional(),
});

/** Seconds as the whole milliseconds the payload carries (never -0). */
const millis = (seconds: number): number => Math.round(seconds * 1000) + 0;

/** The field an issue is about (`queue_detail.level`, `headers["x y"]`) and what is wrong with it. */
function describe(issue: z.core.$ZodIssue): [string, string] {
  const path =
    issue.path.reduce<string>((acc, seg) => {
      const name = String(seg);
      if (typeof seg === 'number') return `${acc}[${seg}]`;
      return /^[A-Za-z_]\w*$/.test(name) ? (acc ? `${acc}.${name}` : name) : `${acc}[${JSON.stringify(name)}]`;
    }, '') || 'params';
  if (issue.code === 'invalid_key' && issue.issues[0]) return [path, issue.issues[0].message];
  return [path, issue.message];
}

/**
 * Deepest nesting of objects and arrays a call's content may have. Generous for real data; it
 * keeps every stored payload readable by any JSON decoder (Redis's Lua cjson stops at 1,000).
 */
export const MAX_CONTENT_DEPTH = 100;

/** True when `value` nests objects/arrays deeper than `max` (iterative: a hostile depth cannot overflow the stack). */
function nestedDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

function parseContent(raw: unknown): unknown {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string') {
    if (raw.trim() === '') return null;
    try {
      return JSON.parse(raw);
    } catch {
      throw badParams('content', 'a string content must be JSON text');
    }
  }
  if (typeof raw === 'object') return raw;
  throw badParams('content', `expected an object, an array, a JSON string or null, got ${shown(raw)}`);
}

function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '');
  } catch {
    throw badParams('content', 'cannot be serialised');
  }
}

type Params = z.output<typeof schema>;

const POLICY_SET: ReadonlySet<unknown> = new Set(POLICIES);

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
/** A number within [min, max] (Infinity and NaN are not). */
const within = (value: unknown, range: { min: number; max: number }): boolean => typeof value === 'number' && value >= range.min && value <= range.max;
const optionalWithin = (value: unknown, range: { min: number; max: number }): boolean => value === undefined || within(value, range);

/**
 * The common, valid params checked by hand, each rule the schema's own: true only when the
 * schema would accept `json` as it is, so the rest of the parse reads the same fields either
 * way (the schema drops unknown keys; nothing after it reads one). Anything else, invalid or
 * merely unusual, answers false and goes through the schema, which words every error.
 */
export function isCommonShape(json: object): json is Params {
  const p = json as Record<string, unknown>;
  const url = p.url;
  if (typeof url !== 'string' || url.length > 8192 || !URL_PATTERN.test(url)) return false;
  const method = p.method;
  if (typeof method !== 'string' || method.length > 16 || !HTTP_METHODS.has(method.toUpperCase())) return false;
  const headers = p.headers;
  if (headers !== undefined) {
    if (!isObject(headers)) return false;
    // Forbidden names were refused before this point.
    for (const name in headers) {
      if (typeof headers[name] !== 'string' || !HEADER_NAME.test(name)) return false;
    }
  }
  const reply = p.reply;
  if (reply !== undefined && typeof reply !== 'boolean') return false;
  if (!optionalWithin(p.timeout, RANGES.timeout)) return false;
  const q = p.queue_detail;
  if (q === undefined) return true;
  if (!isObject(q)) return false;
  if ((q.level !== 1 && q.level !== 2) || typeof q.limit_policy !== 'string' || !POLICY_SET.has(q.limit_policy)) return false;
  const key = q.key;
  if (key !== undefined && (typeof key !== 'string' || key.length < 1 || key.length > 1024)) return false;
  const id = q.id;
  if (id !== undefined && (typeof id !== 'string' || !JOB_ID_PATTERN.test(id))) return false;
  const group = q.group;
  if (group !== undefined && !isGroupName(group)) return false;
  const attempts = q.attempts;
  if (attempts !== undefined && (!Number.isSafeInteger(attempts) || !within(attempts, RANGES.attempts))) return false;
  return (
    optionalWithin(q.ttl, RANGES.ttl) &&
    optionalWithin(q.backoff, RANGES.backoff) &&
    optionalWithin(q.job_timeout, RANGES.job_timeout) &&
    optionalWithin(q.delay, RANGES.delay)
  );
}

/** Input.params → a request, or a 400 naming the field (docs/protocol.md, section 2). */
export function parseParams(text: string, limits: ParamsLimits): CallRequest {
  return parseParamsUsing(text, limits, true);
}

function parseParamsUsing(text: string, limits: ParamsLimits, fast: boolean): CallRequest {
  if (text.length > limits.maxParamsBytes || (text.length * 3 > limits.maxParamsBytes && Buffer.byteLength(text) > limits.maxParamsBytes)) {
    throw badParams('params', `larger than the ${limits.maxParamsBytes}-byte limit (the gateway's --max-params)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw badParams('params', `not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw badParams('params', `expected a JSON object, got ${shown(json)}`);

  // The schema library drops these keys silently; a caller sending them gets told.
  const rawHeaders = (json as { headers?: unknown }).headers;
  if (rawHeaders && typeof rawHeaders === 'object') {
    for (const name of Object.keys(rawHeaders)) {
      if (FORBIDDEN_KEYS.has(name.toLowerCase())) throw badParams('headers', `header name ${JSON.stringify(name)} is not allowed`);
    }
  }
  const p = fast && isCommonShape(json) ? json : zodParse(json);
  return finish(p, text, limits);
}

/** The same as parseParams without the fast path: every params through zod (the reference the fast path is tested against). */
export function parseParamsWithZod(text: string, limits: ParamsLimits): CallRequest {
  return parseParamsUsing(text, limits, false);
}

function zodParse(json: object): Params {
  const result = schema.safeParse(json);
  if (!result.success) throw badParams(...describe(result.error.issues[0]));
  return result.data;
}

/** What follows the schema: the content, the lone surrogates, and the request itself. */
function finish(p: Params, text: string, limits: ParamsLimits): CallRequest {
  const content = parseContent(p.content);
  if (nestedDeeperThan(content, MAX_CONTENT_DEPTH)) throw badParams('content', `nested deeper than ${MAX_CONTENT_DEPTH} levels`);
  if (text.length > limits.maxBodyBytes && jsonBytes(content) > limits.maxBodyBytes) {
    throw badParams('content', `larger than the ${limits.maxBodyBytes}-byte limit (the gateway's --max-body)`);
  }

  // Checked here, once, rather than by a refinement per field (this is the hot path of every call).
  if (!isWellFormed(p.url)) throw badParams('url', LONE_SURROGATE);
  if (p.queue_detail?.key !== undefined && !isWellFormed(p.queue_detail.key)) throw badParams('queue_detail.key', LONE_SURROGATE);
  const headers: Record<string, string> = Object.create(null);
  if (p.headers) {
    for (const name of Object.keys(p.headers)) {
      const value = p.headers[name];
      if (!isWellFormed(value)) throw badParams(`headers[${JSON.stringify(name)}]`, LONE_SURROGATE);
      headers[name.toLowerCase()] = value;
    }
  }

  const method = p.method.toUpperCase();
  const reply = p.reply ?? true;
  const request: CallRequest = { url: p.url, method, headers, content, reply };
  if (p.timeout !== undefined) request.timeoutMs = millis(p.timeout);
  if (!reply) {
    const q = p.queue_detail;
    if (!q) throw badParams('queue_detail', 'required when reply is false');
    request.queue = { level: q.level, policy: q.limit_policy, key: q.key ?? `${method} ${p.url}` };
    if (q.id !== undefined) request.queue.id = q.id;
    if (q.group !== undefined) request.queue.group = q.group;
    if (q.ttl !== undefined) request.queue.ttlMs = millis(q.ttl);
    if (q.attempts !== undefined) request.queue.attempts = q.attempts;
    if (q.backoff !== undefined) request.queue.backoffMs = millis(q.backoff);
    const delayMs = q.delay === undefined ? 0 : millis(q.delay);
    if (delayMs > 0) request.queue.delayMs = delayMs;
    // The job's own deadline wins over the call's timeout, which wins over --job-timeout.
    if (q.job_timeout !== undefined) request.timeoutMs = millis(q.job_timeout);
  }
  return request;
}
