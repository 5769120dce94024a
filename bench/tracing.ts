// What tracing costs: this work tree against itself, its gateway and worker started without an
// SDK (the "ref" column) and with `--otel` exporting every span over OTLP/HTTP to a sink that
// keeps nothing (the "tree" column), rounds interleaved as in the regression gate.
// `npm run bench -- --tracing [--rounds 3] [--jobs 20000] [--quick]`.
import { runCompare, type CompareResults } from './compare';
import { startNode } from './lib';

export async function benchTracing(options: { rounds: number; jobs: number; requests: number }): Promise<CompareResults> {
  const sink = await startNode(['dist/bench/otlp-sink.js'], 'sink ready');
  try {
    const on = {
      SWITCHYARD_OTEL: 'true',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${sink.fields.port}/v1/traces`,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
    };
    return await runCompare({ ref: 'tracing off', ...options, sameTree: { env: { ref: {}, tree: on } } });
  } finally {
    await sink.stop();
  }
}
