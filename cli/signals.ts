// SIGTERM/SIGINT: the first stops gracefully (the caller's stop), a second exits at once.
import { log } from '../shared/log';

export function onShutdownSignal(name: string, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ event: 'shutdown_forced', signal }, `second ${signal}, exiting now`);
      process.exit(130);
    }
    stopping = true;
    log.info({ event: 'shutdown_started', command: name, signal }, `${signal} received, shutting down gracefully (send again to exit now)`);
    stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ event: 'shutdown_failed', err: { message: err.message } }, `shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
