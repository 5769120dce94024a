// What the Lua scripts read in a payload, a dead-letter entry and an index entry, read the same
// way in TypeScript so the checker sees a job exactly as the scripts do (scripts/helpers/:
// routeOf, jobId, deadPayloadOf, and the index entry forms above setWhere).
//
// Everything here works on "byte strings": Redis replies read as Buffers and decoded as latin1,
// one character per byte. A key is compared byte for byte, as Redis compares it; decoding
// replies as UTF-8 would turn invalid bytes into U+FFFD and hide the very mismatches (a lone
// surrogate's key stored as two different byte sequences) the checker is for.
import type { Level } from '../../levels';

/** A byte string: each character is one byte (latin1). */
export type Bytes = string;

export const bytesOf = (buffer: Buffer): Bytes => buffer.toString('latin1');
export const bufferOf = (bytes: Bytes): Buffer => Buffer.from(bytes, 'latin1');
/** For messages: the bytes as UTF-8 text (invalid sequences shown as U+FFFD), quoted. */
export const shown = (bytes: Bytes): string => JSON.stringify(bufferOf(bytes).toString('utf8'));

export interface Route {
  id: string;
  at: number;
  level: Level;
  policy: 'execute' | 'last' | 'discard';
  /** `last` only: the coalescing key, as bytes (the scripts' decoding of the JSON string). */
  key?: Bytes;
  attempt: number;
}

const HEX4 = /^[0-9A-Fa-f]{4}$/;

/**
 * Decodes one JSON string literal s[i..j] (quotes included) as Redis's cjson does: escapes
 * become UTF-8, raw bytes stay as they are, a lone UTF-16 surrogate is an error. Null when
 * cjson would refuse it. Without a backslash the scripts take the raw bytes between the quotes.
 */
export function jsonString(s: Bytes, i: number, j: number): Bytes | null {
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
    out += bytesOf(Buffer.from(String.fromCodePoint(code), 'utf8'));
  }
  return out;
}

/** Index of the quote closing the JSON string that opens at index i, or -1 (jsonStringEnd). */
export function jsonStringEnd(s: Bytes, i: number): number {
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

/** The routing fields of a payload as routeOf reads them; null where the scripts read none. */
export function routeOf(payload: Bytes): Route | null {
  const attempt = ATTEMPT.exec(payload);
  let p = attempt ? attempt[0].length : 1;
  const head = HEAD.exec(payload.slice(p));
  if (!head) return null;
  p += head[0].length;
  const route: Route = { id: head[1], at: Number(head[2]), level: Number(head[3]) as Level, policy: 'execute', attempt: attempt ? Number(attempt[1]) : 1 };
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
  }
  return route;
}

/** The id of a payload as jobId reads it (the first "id" field before any nested object). */
export function jobIdOf(payload: Bytes): string | null {
  return /^\{[^{]*?"id":"([A-Za-z0-9_-]+)"/.exec(payload)?.[1] ?? null;
}

const DEAD_HEAD = /^\{"failedAt":\d+,"attempts":\d+,"status":[^,]*,"error":/;

/** The job inside a dead-letter entry, as deadPayloadOf cuts it out; null for an entry of another form. */
export function deadPayloadOf(entry: Bytes): Bytes | null {
  const head = DEAD_HEAD.exec(entry);
  if (!head) return null;
  const close = jsonStringEnd(entry, head[0].length);
  if (close === -1 || entry.slice(close + 1, close + 8) !== ',"job":') return null;
  return entry.slice(close + 8, -1);
}

/** Whether the bytes are one JSON document (as any decoder of the payload will need). */
export function isJson(bytes: Bytes): boolean {
  try {
    JSON.parse(bufferOf(bytes).toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
