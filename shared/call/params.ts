// Input.params: JSON text → a validated CallRequest, or a 400 naming the offending field.
import { z } from 'zod';
import { badRequest, SwitchyardError } from '../errors';

export type Level = 1 | 2;
export type Policy = 'execute' | 'last' | 'discard';

export interface QueueDetail {
  level: Level;
  policy: Policy;
  /** Coalescing key of `last` (default `METHOD url`). */
  key: string;
  ttlMs?: number;
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

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'header names are HTTP tokens')
  .refine((k) => !FORBIDDEN_KEYS.has(k.toLowerCase()), 'header name is not allowed');

const schema = z.object({
  url: z
    .string({ error: 'required, a string' })
    .min(1, 'must not be empty')
    .max(8192, 'longer than 8192 characters')
    .regex(/^\/[^\s#]*$/, 'must be a path starting with "/" (no spaces, no fragment)'),
  method: z
    .string({ error: 'required, a string' })
    .regex(/^[A-Za-z]{1,16}$/, 'must be an HTTP verb such as GET or POST'),
  headers: z.record(headerName, z.string({ error: 'header values must be strings' }), { error: 'must be an object of strings' }).optional(),
  content: z.unknown().optional(),
  reply: z.boolean({ error: 'must be true or false' }).optional(),
  timeout: z.number({ error: 'must be a number of seconds' }).positive('must be more than 0').max(86_400, 'at most 86400 seconds').optional(),
  queue_detail: z
    .object(
      {
        level: z.union([z.literal(1), z.literal(2)], { error: 'must be 1 or 2' }),
        limit_policy: z.enum(['execute', 'last', 'discard'], { error: 'must be "execute", "last" or "discard"' }),
        key: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(1024, 'longer than 1024 characters').optional(),
        ttl: z.number({ error: 'must be a number of seconds' }).positive('must be more than 0').optional(),
      },
      { error: 'must be an object' },
    )
    .optional(),
});

function describe(issue: z.core.$ZodIssue): string {
  const path = issue.path.reduce<string>((acc, seg) => {
    const name = String(seg);
    if (typeof seg === 'number') return `${acc}[${seg}]`;
    return /^[A-Za-z_]\w*$/.test(name) ? (acc ? `${acc}.${name}` : name) : `${acc}[${JSON.stringify(name)}]`;
  }, '') || 'params';
  if (issue.code === 'invalid_type' && issue.input === undefined) return `${path}: required`;
  if (issue.code === 'invalid_key' && issue.issues[0]) return `${path}: ${issue.issues[0].message}`;
  return `${path}: ${issue.message}`;
}

function parseContent(raw: unknown): unknown {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string') {
    if (raw.trim() === '') return null;
    try {
      return JSON.parse(raw);
    } catch {
      throw badRequest('content: a string content must be JSON text');
    }
  }
  if (typeof raw === 'object') return raw;
  throw badRequest('content: must be an object, an array, a JSON string or null');
}

function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '');
  } catch {
    throw badRequest('content: cannot be serialised (nested too deeply?)');
  }
}

export function parseParams(text: string, limits: ParamsLimits): CallRequest {
  if (text.length > limits.maxParamsBytes || (text.length * 3 > limits.maxParamsBytes && Buffer.byteLength(text) > limits.maxParamsBytes)) {
    throw new SwitchyardError(400, `params: larger than the ${limits.maxParamsBytes}-byte limit`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw badRequest(`params: not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw badRequest('params: must be a JSON object');

  // The schema library drops these keys silently; a caller sending them gets told.
  const rawHeaders = (json as { headers?: unknown }).headers;
  if (rawHeaders && typeof rawHeaders === 'object') {
    for (const name of Object.keys(rawHeaders)) {
      if (FORBIDDEN_KEYS.has(name.toLowerCase())) throw badRequest(`headers: header name ${JSON.stringify(name)} is not allowed`);
    }
  }
  const result = schema.safeParse(json);
  if (!result.success) throw badRequest(describe(result.error.issues[0]));
  const p = result.data;

  const content = parseContent(p.content);
  if (text.length > limits.maxBodyBytes && jsonBytes(content) > limits.maxBodyBytes) {
    throw badRequest(`content: larger than the ${limits.maxBodyBytes}-byte limit`);
  }

  const headers: Record<string, string> = Object.create(null);
  if (p.headers) for (const name of Object.keys(p.headers)) headers[name.toLowerCase()] = p.headers[name];

  const method = p.method.toUpperCase();
  const reply = p.reply ?? true;
  const request: CallRequest = { url: p.url, method, headers, content, reply };
  if (p.timeout !== undefined) request.timeoutMs = Math.round(p.timeout * 1000);
  if (!reply) {
    const q = p.queue_detail;
    if (!q) throw badRequest('queue_detail: required when reply is false');
    request.queue = { level: q.level, policy: q.limit_policy, key: q.key ?? `${method} ${p.url}` };
    if (q.ttl !== undefined) request.queue.ttlMs = Math.round(q.ttl * 1000);
  }
  return request;
}
