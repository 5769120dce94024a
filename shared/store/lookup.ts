// What lookup shows of a job: its state read from the index entry (see scripts/helpers/setWhere.lua),
// with the call it carries.
import type { Level } from '../levels';
import type { RawLookup } from './store';

export type JobState = 'waiting' | 'running' | 'retry' | 'dead' | 'done' | 'unknown';

export interface JobView {
  id: string;
  state: JobState;
  partition?: number;
  level?: Level;
  /** The queue it waits in, e.g. "L1:execute". */
  queue?: string;
  /** `last` messages: the coalescing key. */
  key?: string;
  /** Waiting: how many run before it (0: next); absent when the queue was too long to count. */
  position?: number;
  /** Running: the worker, since when (ISO), and until when its lease holds. */
  worker?: string;
  since?: string;
  leaseUntil?: string;
  /** Retry (or delay): when it is due. */
  due?: string;
  /** Dead or done: how it ended. */
  status?: string | null;
  error?: string;
  failedAt?: string;
  finishedAt?: string;
  url?: string;
  method?: string;
  attempt?: number;
  enqueuedAt?: string;
  fence?: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The call's fields from a stored payload (or a dead entry's), as much as can be read. */
function callOf(payload: string): Partial<JobView> {
  try {
    const raw = JSON.parse(payload) as { level?: Level; url?: string; method?: string; attempt?: number; at?: number; key?: string; policy?: string };
    return {
      level: raw.level,
      url: raw.url,
      method: raw.method,
      attempt: raw.attempt ?? 1,
      enqueuedAt: raw.at ? iso(raw.at) : undefined,
      ...(raw.key !== undefined && { key: raw.key }),
    };
  } catch {
    return {};
  }
}

export function viewOf(id: string, raw: RawLookup | null, partition?: number): JobView {
  if (!raw) return { id, state: 'unknown' };
  const { where, found } = raw;
  const base = { id, ...(partition !== undefined && { partition }) };
  switch (where[0]) {
    case 'w': {
      const [queue, key] = where.slice(1).split('\n');
      return { ...base, state: 'waiting', queue, ...(key !== undefined && { key }), ...(raw.position >= 0 && { position: raw.position }), ...callOf(found) };
    }
    case 'r': {
      const m = /^r(\d+):(\d+):(.*)$/s.exec(where)!;
      return {
        ...base,
        state: 'running',
        worker: m[3],
        since: iso(Number(m[1])),
        fence: Number(m[2]),
        ...(raw.leaseUntil > 0 && { leaseUntil: iso(raw.leaseUntil) }),
        ...callOf(found),
      };
    }
    case 't':
      return { ...base, state: 'retry', due: iso(Number(where.slice(1))), ...callOf(found) };
    case 'x': {
      const e = found ? readDeadEntry(found) : null;
      if (!e) return { ...base, state: 'dead' };
      return {
        ...base,
        state: 'dead',
        status: e.status,
        error: e.error,
        failedAt: iso(e.failedAt),
        level: e.level as Level,
        method: e.method,
        url: e.url,
        attempt: e.attempts,
      };
    }
    case 'd': {
      const m = /^d(\d+):([^:]*):(\d+):(\d+):([^:]*):(.*)$/s.exec(where);
      if (!m) return { ...base, state: 'done' };
      return {
        ...base,
        state: 'done',
        finishedAt: iso(Number(m[1])),
        status: m[2],
        attempt: Number(m[3]),
        enqueuedAt: iso(Number(m[4])),
        method: m[5],
        url: m[6],
      };
    }
    default:
      return { ...base, state: 'unknown' };
  }
}

/** A dead-letter entry as people and the dashboard read it. */
export interface DeadView {
  id: string;
  level: number;
  method: string;
  url: string;
  attempts: number;
  status: string | null;
  error: string;
  failedAt: number;
}

/** Reads a dead-letter entry; null for one that is not of the usual form (shown as it is). */
export function readDeadEntry(text: string): DeadView | null {
  try {
    const e = JSON.parse(text) as {
      failedAt: number;
      attempts: number;
      status: string | null;
      error: string;
      job: { id: string; level: number; method: string; url: string };
    };
    return {
      id: e.job.id,
      level: e.job.level,
      method: e.job.method,
      url: e.job.url,
      attempts: e.attempts,
      status: e.status,
      error: e.error,
      failedAt: e.failedAt,
    };
  } catch {
    return null;
  }
}
