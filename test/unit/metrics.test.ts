// The light counters and histograms read through prom-client's registry, as Prometheus scrapes them.
import { Metrics } from '../../shared/ops/metrics';

test('a histogram exposes cumulative buckets, +Inf, sum and count per label set', async () => {
  const metrics = new Metrics();
  const sync = metrics.callSeconds.recorder({ kind: 'sync' });
  const invalid = metrics.callSeconds.recorder({ kind: 'invalid' });
  for (const seconds of [0.0004, 0.0005, 0.003, 0.2, 7]) sync(seconds);
  invalid(0.0001);
  const text = await metrics.registry.metrics();

  expect(text).toContain('# TYPE switchyard_call_seconds histogram');
  expect(text).toContain('switchyard_call_seconds_bucket{kind="sync",le="0.0005"} 2'); // le is inclusive
  expect(text).toContain('switchyard_call_seconds_bucket{kind="sync",le="0.005"} 3');
  expect(text).toContain('switchyard_call_seconds_bucket{kind="sync",le="0.25"} 4');
  expect(text).toContain('switchyard_call_seconds_bucket{kind="sync",le="5"} 4');
  expect(text).toContain('switchyard_call_seconds_bucket{kind="sync",le="+Inf"} 5');
  expect(text).toContain('switchyard_call_seconds_count{kind="sync"} 5');
  expect(text).toMatch(/switchyard_call_seconds_sum\{kind="sync"\} 7\.2039/);
  expect(text).toContain('switchyard_call_seconds_count{kind="invalid"} 1');
});

test('a counter keeps one series per label set; recorders of the same labels share it', async () => {
  const metrics = new Metrics();
  const ok = metrics.calls.recorder({ kind: 'sync', status: '200' });
  const again = metrics.calls.recorder({ kind: 'sync', status: '200' });
  const refused = metrics.calls.recorder({ kind: 'async', status: '409' });
  ok();
  ok();
  again();
  refused();
  const text = await metrics.registry.metrics();
  expect(text).toContain('# TYPE switchyard_calls_total counter');
  expect(text).toContain('switchyard_calls_total{kind="sync",status="200"} 3');
  expect(text).toContain('switchyard_calls_total{kind="async",status="409"} 1');
  // prom-client's default process metrics are still there.
  expect(text).toContain('process_resident_memory_bytes');
});
