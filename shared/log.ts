// The process log: one JSON line per event on stdout (pino), for a platform to collect.
// Every line carries `event`, a stable name to filter on; `msg` is for people.
import { context, trace } from '@opentelemetry/api';
import pino from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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
