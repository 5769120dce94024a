// The process log: one JSON line per event on stdout (pino), for a platform to collect.
// Every line carries `event`, a stable name to filter on; `msg` is for people.
import { context, trace } from '@opentelemetry/api';
import pino from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * ioredis' own words for a connection that is not there (its option names, its internals), and
 * ours. Every log line passes through inOurWords: a line that quotes an ioredis error says what
 * happened in our terms. Only the log: a caller's reply is worded where it is made.
 */
const IOREDIS_WORDS: ReadonlyArray<readonly [RegExp, string]> = [
  [/Stream isn't writeable and enableOfflineQueue options is false/g, 'Redis connection not ready'],
  [/Cluster isn't ready and enableOfflineQueue options is false/g, 'Redis Cluster connection not ready'],
  [/Connection is closed\./g, 'Redis connection closed'],
  [/None of startup nodes is available/g, 'no node of the Redis Cluster answers'],
  [/Failed to refresh slots cache\.?/g, "could not read the Redis Cluster's slot map"],
  [
    /Reached the max retries per request limit \(which is \d+\)\. Refer to "maxRetriesPerRequest" option for details\./g,
    'the connection to Redis dropped before Redis answered',
  ],
];

/** A text with ioredis' wording of a missing connection put in ours. */
export function inOurWords(text: string): string {
  let out = text;
  for (const [theirs, ours] of IOREDIS_WORDS) out = out.replace(theirs, ours);
  return out;
}

/** A log call's arguments with inOurWords applied to its message and to `err.message` and `error` of its object (copied, not changed). */
export function wordedArgs(args: unknown[]): unknown[] {
  return args.map((arg) => {
    if (typeof arg === 'string') return inOurWords(arg);
    if (arg === null || typeof arg !== 'object' || arg instanceof Error) return arg;
    const obj = arg as { err?: unknown; error?: unknown };
    const err = obj.err as { message?: unknown } | undefined;
    const errWorded = err && typeof err === 'object' && !(err instanceof Error) && typeof err.message === 'string';
    if (!errWorded && typeof obj.error !== 'string') return arg;
    const copy: Record<string, unknown> = { ...obj };
    if (errWorded) copy.err = { ...err, message: inOurWords(err.message as string) };
    if (typeof obj.error === 'string') copy.error = inOurWords(obj.error);
    return copy;
  });
}

export const log = pino(
  {
    level: LOG_LEVELS.includes(process.env.SWITCHYARD_LOG_LEVEL as LogLevel) ? process.env.SWITCHYARD_LOG_LEVEL : 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // A line written inside a traced call or job names its trace, so it leads to it.
    mixin: () => {
      const span = trace.getSpan(context.active());
      if (!span) return {};
      const { traceId, spanId } = span.spanContext();
      return trace.isSpanContextValid(span.spanContext()) ? { trace_id: traceId, span_id: spanId } : {};
    },
    hooks: {
      logMethod(args, method) {
        method.apply(this, wordedArgs(args) as Parameters<typeof method>);
      },
    },
  },
  // Synchronous: events are few (never one per call or job done), and a line must not be lost
  // when the process exits right after writing it.
  pino.destination({ dest: 1, sync: true }),
);

export function setLogLevel(level: LogLevel): void {
  log.level = level;
}

/** A URL fit for the log: the password (or whole user-info) replaced. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
