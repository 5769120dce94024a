// What lookup shows of a job: its state read from the index entry (see scripts/helpers/setWhere.lua),
// with the call it carries.
import type { Level } from '../levels';
import { deadPayloadOf, readDeadEntry } from './format/dead-entry';
import { readIndexEntry } from './format/index-entry';
import { atMs, readCall } from './format/job';
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
  /**
   * Unknown only: the index has no entry and the waiting lists were read this far (from the
   * next to run) without finding it; they hold more, so it may wait further back.
   */
  searched?: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The call's fields from a stored payload, as much as can be read. */
function callOf(payload: string): Partial<JobView> {
  const call = readCall(payload);
  return {
    level: call.level,
    url: call.url,
    method: call.method,
    attempt: call.attempt,
    enqueuedAt: call.at ? iso(call.at) : undefined,
    ...(call.key !== undefined && { key: call.key }),
  };
}

/** When the job of a dead entry was enqueued (its payload's `at`), if it can be read. */
function enqueuedAtOf(entry: string): string | undefined {
  const at = readCall(deadPayloadOf(entry) ?? '').at;
  return at === undefined ? undefined : iso(at);
}

export function viewOf(id: string, raw: RawLookup | null, partition?: number): JobView {
  if (!raw) return { id, state: 'unknown' };
  const { where, found } = raw;
  const base = { id, ...(partition !== undefined && { partition }) };
  if (where === '') return { ...base, state: 'unknown', searched: raw.searched };
  const entry = readIndexEntry(where);
  switch (entry?.kind) {
    case 'waiting': {
      const queue = `L${entry.level}:${entry.policy}`;
      const key = entry.policy === 'last' ? entry.key : undefined;
      return { ...base, state: 'waiting', queue, ...(key !== undefined && { key }), ...(raw.position >= 0 && { position: raw.position }), ...callOf(found) };
    }
    case 'running':
      return {
        ...base,
        state: 'running',
        worker: entry.worker,
        since: iso(entry.since),
        fence: Number(entry.token),
        ...(raw.leaseUntil > 0 && { leaseUntil: iso(raw.leaseUntil) }),
        ...callOf(found),
      };
    case 'due':
      return { ...base, state: 'retry', due: iso(entry.due), ...callOf(found) };
    case 'dead': {
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
        ...(enqueuedAtOf(found) !== undefined && { enqueuedAt: enqueuedAtOf(found) }),
      };
    }
    case 'done':
      if (entry.attempt === 0) return { ...base, state: 'done' };
      return {
        ...base,
        state: 'done',
        finishedAt: iso(entry.at),
        status: entry.status,
        attempt: entry.attempt,
        enqueuedAt: iso(atMs(entry.enqueued)),
        method: entry.method,
        url: entry.url,
      };
    default:
      return { ...base, state: 'unknown' };
  }
}
