// Input.params: JSON text → a validated CallRequest, or a 400 naming the offending field.
import { z } from 'zod';
import { badParams } from '../errors';

export type Level = 1 | 2;
export type Policy = 'execute' | 'last' | 'discard';

export interface QueueDetail {
  level: Level;
  policy: Policy;
  /** Coalescing key of `last` (default `METHOD url`). */
  key: string;
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

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'header names are HTTP tokens')
  .refine((k) => !FORBIDDEN_KEYS.has(k.toLowerCase()), 'header name is not allowed');

const seconds = z.number({ error: expected('a number of seconds') });

const schema = z.object({
  url: z
    .string({ error: expected('a string') })
    .min(1, 'must not be empty')
    .max(8192, 'longer than 8192 characters')
    .regex(/^\/[^\s#]*$/, 'must be a path starting with "/" (no spaces, no fragment)'),
  method: z.string({ error: expected('a string') }).regex(/^[A-Za-z]{1,16}$/, 'must be an HTTP verb such as GET or POST'),
  headers: z.record(headerName, z.string({ error: expected('a string') }), { error: expected('an object of strings') }).optional(),
  content: z.unknown().optional(),
  reply: z.boolean({ error: expected('true or false') }).optional(),
  timeout: seconds.positive('must be more than 0').max(86_400, 'at most 86400 seconds').optional(),
  queue_detail: z
    .object(
      {
        level: z.union([z.literal(1), z.literal(2)], { error: expected('1 or 2') }),
        limit_policy: z.enum(['execute', 'last', 'discard'], { error: expected('"execute", "last" or "discard"') }),
        key: z
          .string({ error: expected('a string') })
          .min(1, 'must not be empty')
          .max(1024, 'longer than 1024 characters')
          .optional(),
        ttl: seconds.positive('must be more than 0').optional(),
        attempts: z
          .number({ error: expected('a whole number of runs') })
          .int('must be a whole number')
          .min(1, 'at least 1')
          .max(1000, 'at most 1000')
          .optional(),
        backoff: seconds.positive('must be more than 0').max(3600, 'at most 3600 seconds').optional(),
        job_timeout: seconds.positive('must be more than 0').max(86_400, 'at most 86400 seconds').optional(),
        delay: seconds
          .min(0, 'must not be negative')
          .max(30 * 86_400, 'at most 30 days')
          .optional(),
      },
      { error: expected('an object') },
    )
    .optional(),
});

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

export function parseParams(text: string, limits: ParamsLimits): CallRequest {
  if (text.length > limits.maxParamsBytes || (text.length * 3 > limits.maxParamsBytes && Buffer.byteLength(text) > limits.maxParamsBytes)) {
    throw badParams('params', `larger than the ${limits.maxParamsBytes}-byte limit`);
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
  const result = schema.safeParse(json);
  if (!result.success) throw badParams(...describe(result.error.issues[0]));
  const p = result.data;

  const content = parseContent(p.content);
  if (nestedDeeperThan(content, MAX_CONTENT_DEPTH)) throw badParams('content', `nested deeper than ${MAX_CONTENT_DEPTH} levels`);
  if (text.length > limits.maxBodyBytes && jsonBytes(content) > limits.maxBodyBytes) {
    throw badParams('content', `larger than the ${limits.maxBodyBytes}-byte limit`);
  }

  const headers: Record<string, string> = Object.create(null);
  if (p.headers) for (const name of Object.keys(p.headers)) headers[name.toLowerCase()] = p.headers[name];

  const method = p.method.toUpperCase();
  const reply = p.reply ?? true;
  const request: CallRequest = { url: p.url, method, headers, content, reply };
  if (p.timeout !== undefined) request.timeoutMs = Math.round(p.timeout * 1000);
  if (!reply) {
    const q = p.queue_detail;
    if (!q) throw badParams('queue_detail', 'required when reply is false');
    request.queue = { level: q.level, policy: q.limit_policy, key: q.key ?? `${method} ${p.url}` };
    if (q.ttl !== undefined) request.queue.ttlMs = Math.round(q.ttl * 1000);
    if (q.attempts !== undefined) request.queue.attempts = q.attempts;
    if (q.backoff !== undefined) request.queue.backoffMs = Math.round(q.backoff * 1000);
    if (q.delay) request.queue.delayMs = Math.round(q.delay * 1000);
    // The job's own deadline wins over the call's timeout, which wins over --job-timeout.
    if (q.job_timeout !== undefined) request.timeoutMs = Math.round(q.job_timeout * 1000);
  }
  return request;
}
