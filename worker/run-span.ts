// A job run's CONSUMER span, `process L<level>:<policy>`: by default a new trace linked to the
// context stored with the job when it was queued (the conventions' default for a consumer that
// runs later), or its child with --otel-parent. A coalesced `last` run also links to the
// messages it superseded. Retries, burial, a lost lease and a passed deadline are events with
// the error recorded; a 5xx message stays out unless the route exposed it.
import { destinationOf } from '../shared/call/tracing';
import { MAX_LINKS } from '../shared/store/format/job';
import { contextOf, linkTo, recordFailure, ROOT_CONTEXT, SpanKind, SpanStatusCode, tracer, type Link, type Span, type TraceCarrier } from '../shared/trace';

export interface TracedRun {
  id: string;
  level: number;
  policy: string;
  attempt: number;
  /** Enqueue time, Redis ms. */
  at: number;
  token: number;
  partition: number;
  /** The context stored with the job (absent when tracing was off at the gateway). */
  trace?: TraceCarrier;
  /** Contexts of the `last` messages this one superseded, newest first (the payload's "links"). */
  links?: string[];
}

export function startRunSpan(run: TracedRun, asChild: boolean, nowMs: number): Span {
  const destination = destinationOf(run.level, run.policy);
  const links: Link[] = [];
  const creation = asChild ? undefined : linkTo(run.trace);
  if (creation) links.push(creation);
  for (const traceparent of (run.links ?? []).slice(0, MAX_LINKS)) {
    const link = linkTo({ traceparent }, { 'switchyard.link': 'superseded' });
    if (link) links.push(link);
  }
  return tracer.startSpan(
    `process ${destination}`,
    {
      kind: SpanKind.CONSUMER,
      links,
      attributes: {
        'messaging.system': 'switchyard',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': destination,
        'messaging.message.id': run.id,
        'switchyard.partition': run.partition,
        'switchyard.attempt': run.attempt,
        'switchyard.fence': run.token,
        'switchyard.waited_ms': Math.max(0, nowMs - run.at),
      },
    },
    asChild ? contextOf(run.trace) : ROOT_CONTEXT,
  );
}

/**
 * A run's end as its span records it, from the runner's outcome. The message is what the
 * caller would be shown (the status text of a 5xx unless the route exposed it), never the
 * internal error.
 */
export function runEndOf(outcome: string, reply: { status: number; data: unknown }, deadlinePassed: boolean): RunEnd {
  if (outcome === 'done') return { kind: 'done', status: reply.status };
  const shown = typeof reply.data === 'string' ? reply.data : `status ${reply.status}`;
  const deadline = deadlinePassed && reply.status === 504;
  if (outcome === 'retried') return { kind: 'retry', status: reply.status, message: shown, deadline };
  if (outcome === 'dead' || outcome === 'superseded') return { kind: outcome, status: reply.status, message: shown, deadline };
  // abandoned (the lease was lost), or the run was taken back before its settle arrived.
  return { kind: 'lease_lost', message: 'the worker lost its lease on this run: the job runs again elsewhere' };
}

/** How a run ended, for its span: done (with the route's status), or one of the failures. */
export type RunEnd =
  | { kind: 'done'; status: number }
  | { kind: 'retry' | 'dead' | 'lease_lost' | 'superseded'; status?: number; message: string; nextAttemptInMs?: number; deadline?: boolean };

export function endRunSpan(span: Span, end: RunEnd): void {
  if (end.status !== undefined) span.setAttribute('http.response.status_code', end.status);
  if (end.kind === 'done') {
    if (end.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `status ${end.status}` });
  } else {
    // A passed deadline is an event of its own, before what became of the run.
    if (end.deadline) span.addEvent('deadline_passed', { 'exception.message': end.message });
    recordFailure(
      span,
      { name: end.kind, message: end.message },
      end.kind,
      end.nextAttemptInMs !== undefined ? { 'switchyard.retry_in_ms': end.nextAttemptInMs } : {},
    );
  }
  span.end();
}
