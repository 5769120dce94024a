// The dead-letter entry ({p}:dead), its one owner in TypeScript; the scripts write it
// (scripts/helpers/format/deadEntry.lua) and cut the job out of it (deadPayloadOf.lua):
//   {"failedAt":<ms>,"attempts":N,"status":"<status>"|null,"error":"<text>","job":<payload>}
// The job is the payload verbatim, as the last field, so it comes back out byte for byte.
import { jsonStringEnd } from './job';

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

/** The entry the scripts write for a payload that failed (deadEntry.lua), for tests and tools. */
export function encodeDeadEntry(payload: string, attempts: number, status: string | null, error: string, failedAt: number): string {
  return `{"failedAt":${failedAt},"attempts":${attempts},"status":${status === null || status === '' ? 'null' : `"${status}"`},"error":${JSON.stringify(error)},"job":${payload}}`;
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

const DEAD_HEAD = /^\{"failedAt":\d+,"attempts":\d+,"status":[^,]*,"error":/;

/** The job inside a dead-letter entry, as deadPayloadOf.lua cuts it out; null for an entry of another form. */
export function deadPayloadOf(entry: string): string | null {
  const head = DEAD_HEAD.exec(entry);
  if (!head) return null;
  const close = jsonStringEnd(entry, head[0].length);
  if (close === -1 || entry.slice(close + 1, close + 8) !== ',"job":') return null;
  return entry.slice(close + 8, -1);
}
