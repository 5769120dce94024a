// `--otel`: the process starts the OpenTelemetry SDK itself, configured the standard way by the
// OTEL_* environment variables (exporter, endpoint, protocol, sampler, service name). Only
// traces: metrics stay Prometheus on the admin port, so the SDK's metrics and logs exporters
// are off unless a variable asks for them. The SDK is loaded only when tracing is on.
import { log } from '../shared/log';
import { tracingOn } from '../shared/trace';
import type { Config } from './config';

export interface Tracing {
  /** Flushes spans not yet exported and stops the SDK. */
  stop(): Promise<void>;
}

/** On with --otel, or when OTEL_TRACES_EXPORTER names an exporter (not `none`). */
export function tracingWanted(config: Pick<Config, 'otel'>, env: NodeJS.ProcessEnv = process.env): boolean {
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter === 'none') return false;
  return config.otel || !!exporter;
}

export async function startTracing(config: Config): Promise<Tracing | undefined> {
  if (!tracingWanted(config)) return undefined;
  if (tracingOn()) {
    // Registered before us (`node --require ./tracing.js`): that SDK is the process's, not a second one.
    log.info({ event: 'tracing', service: process.env.OTEL_SERVICE_NAME, exporter: 'registered' }, 'tracing on: an SDK registered before start is used');
    return undefined;
  }
  process.env.OTEL_SERVICE_NAME ??= `switchyard-${config.command}`;
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  // No automatic instrumentations: the spans are Switchyard's own (and the app's, if it makes any).
  const sdk = new NodeSDK({ instrumentations: [] });
  sdk.start();
  log.info(
    {
      event: 'tracing',
      service: process.env.OTEL_SERVICE_NAME,
      exporter: process.env.OTEL_TRACES_EXPORTER ?? 'otlp',
      endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318',
    },
    `tracing on: service ${process.env.OTEL_SERVICE_NAME}, exporter ${process.env.OTEL_TRACES_EXPORTER ?? 'otlp'}`,
  );
  return {
    async stop() {
      try {
        await sdk.shutdown();
      } catch (err) {
        log.warn({ event: 'tracing_stop_failed', err: { message: (err as Error).message } }, `spans not exported at stop: ${(err as Error).message}`);
      }
    },
  };
}
