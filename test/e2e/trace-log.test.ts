// The log mixin in a real process: a line written inside a traced span names the trace and the
// span; a line outside any span, or inside a context whose span is invalid (a caller's context
// that failed to parse, a non-recording placeholder), names none, and nothing throws.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { logLines, ROOT } from '../helpers/processes';

const SCRIPT = `
const api = require('@opentelemetry/api');
const { node } = require('@opentelemetry/sdk-node');
const { log } = require(${JSON.stringify(path.join(ROOT, 'dist', 'shared', 'log.js'))});
log.info({ event: 'before_sdk' }, 'no SDK yet');
new node.NodeTracerProvider().register();
log.info({ event: 'outside' }, 'no span');
api.trace.getTracer('t').startActiveSpan('route', (span) => {
  log.info({ event: 'inside', expected: span.spanContext() }, 'in a span');
  span.end();
});
const invalid = api.trace.setSpan(api.ROOT_CONTEXT, api.trace.wrapSpanContext(api.INVALID_SPAN_CONTEXT));
api.context.with(invalid, () => log.info({ event: 'invalid' }, 'invalid span'));
const zeros = api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 1 });
api.context.with(zeros, () => log.info({ event: 'zeros' }, 'zero ids'));
`;

test('trace_id and span_id inside a span only; an invalid span names none and breaks nothing', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', SCRIPT], { cwd: ROOT, env: { ...process.env, SWITCHYARD_LOG_LEVEL: 'info' } });
  const byEvent = Object.fromEntries(logLines(stdout).map((l) => [l.event, l]));
  expect(Object.keys(byEvent).sort()).toEqual(['before_sdk', 'inside', 'invalid', 'outside', 'zeros']);
  const inside = byEvent.inside as { trace_id?: string; span_id?: string; expected: { traceId: string; spanId: string } };
  expect(inside.trace_id).toBe(inside.expected.traceId);
  expect(inside.span_id).toBe(inside.expected.spanId);
  for (const event of ['before_sdk', 'outside', 'invalid', 'zeros']) {
    expect(byEvent[event]).not.toHaveProperty('trace_id');
    expect(byEvent[event]).not.toHaveProperty('span_id');
  }
});
