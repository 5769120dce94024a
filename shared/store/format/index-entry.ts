// The lookup index entry ({p}:jobs: job id -> where the job is now), its one owner in
// TypeScript; the scripts write it with the where* helpers and read it with placeOf
// (scripts/helpers/format/placeOf.lua documents the forms):
//   wL<level>:<policy>[@<group>][\n<key>]  r<since>:<token>:<worker>  t<due>  x  d<at>:<status>:<attempt>:<enqueued>:<method>:<url>
// The reader works on text and on the checker's byte strings alike (a key or a worker id is
// taken as it stands).
import type { Level } from '../../levels';

/**
 * The one field of the index that is not a job (no job id holds ':'): its long value keeps the
 * hash a hashtable (scripts/helpers/index/keepHashtable.lua). Readers of the whole index skip it.
 */
export const INDEX_KEEPER = ':hashtable';

export type IndexEntry =
  | { kind: 'waiting'; level: Level; policy: 'execute' | 'discard'; group?: string }
  | { kind: 'waiting'; level: Level; policy: 'last'; key: string; group?: string }
  | { kind: 'running'; since: number; token: string; worker: string }
  | { kind: 'due'; due: number }
  | { kind: 'dead' }
  /** `enqueued`: the payload's "at" as stored (either form: atMs of job.ts reads it). */
  | { kind: 'done'; at: number; status: string; attempt: number; enqueued: number; method: string; url: string };

/** The entry a job at this place has, as the scripts write it. */
export function writeIndexEntry(entry: IndexEntry): string {
  switch (entry.kind) {
    case 'waiting':
      return `wL${entry.level}:${entry.policy}${entry.group !== undefined ? `@${entry.group}` : ''}${entry.policy === 'last' ? `\n${entry.key}` : ''}`;
    case 'running':
      return `r${entry.since}:${entry.token}:${entry.worker}`;
    case 'due':
      return `t${entry.due}`;
    case 'dead':
      return 'x';
    case 'done':
      return `d${entry.at}:${entry.status}:${entry.attempt}:${entry.enqueued}:${entry.method}:${entry.url}`;
  }
}

/**
 * Where an entry says the job is; null for an entry of no known form. A finished job's entry
 * whose details cannot be read (an older form) still reads as done, with what can be read.
 */
export function readIndexEntry(where: string): IndexEntry | null {
  let m = /^wL([12]):(execute|discard)(?:@([A-Za-z0-9_.:@/+=-]{1,64}))?$/.exec(where);
  if (m) return { kind: 'waiting', level: Number(m[1]) as Level, policy: m[2] as 'execute' | 'discard', ...(m[3] !== undefined && { group: m[3] }) };
  m = /^wL([12]):last(?:@([A-Za-z0-9_.:@/+=-]{1,64}))?\n([\s\S]*)$/.exec(where);
  if (m) return { kind: 'waiting', level: Number(m[1]) as Level, policy: 'last', key: m[3], ...(m[2] !== undefined && { group: m[2] }) };
  m = /^r(\d+):(\d+):([\s\S]+)$/.exec(where);
  if (m) return { kind: 'running', since: Number(m[1]), token: m[2], worker: m[3] };
  m = /^t(\d+)$/.exec(where);
  if (m) return { kind: 'due', due: Number(m[1]) };
  if (where === 'x') return { kind: 'dead' };
  m = /^d(\d+):([^:]*):(\d+):(\d+):([^:]*):([\s\S]*)$/.exec(where);
  if (m) return { kind: 'done', at: Number(m[1]), status: m[2], attempt: Number(m[3]), enqueued: Number(m[4]), method: m[5], url: m[6] };
  m = /^d(\d+):/.exec(where);
  if (m) return { kind: 'done', at: Number(m[1]), status: '', attempt: 0, enqueued: 0, method: '', url: '' };
  return null;
}
