// What the admin port shows of jobs to a caller without full details (see access.ts): where a
// job is and how it went, never what it carries. Fields are kept by name; anything else — error
// text, keys (by default `METHOD url`, query included), and any field added later — is replaced,
// so a new field is hidden until someone decides it is safe to show.
export const REDACTED = 'redacted: send the admin token';

/** The path of a call's URL; its query string (and anything after a `#`) replaced. */
export function redactUrl(url: unknown): unknown {
  if (typeof url !== 'string') return url === undefined ? undefined : REDACTED;
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : `${url.slice(0, cut)}?${REDACTED}`;
}

/** Fields that say where a job is and how it went: ids, states, times, counts, the HTTP method and status. */
const SHOWN = new Set([
  'id',
  'state',
  'partition',
  'level',
  'queue',
  'position',
  'worker',
  'since',
  'leaseUntil',
  'due',
  'status',
  'failedAt',
  'finishedAt',
  'method',
  'attempt',
  'attempts',
  'enqueuedAt',
  'fence',
  'leaseLeftMs',
  'runningSeconds',
  'searched',
]);

/** A job view, dead entry or running call as a caller without the token may see it. */
export function redactJob<T extends object>(view: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(view)) {
    if (value === undefined) continue;
    out[field] = field === 'url' ? redactUrl(value) : SHOWN.has(field) && (value === null || typeof value !== 'object') ? value : REDACTED;
  }
  return out;
}

/** Workers as the overview lists them, each running call redacted. */
export function redactWorkers(workers: ReadonlyArray<{ running: readonly object[] }>): Array<Record<string, unknown>> {
  return workers.map(({ running, ...worker }) => ({ ...redactJob(worker), running: running.map((call) => redactJob(call)) }));
}
