// SIGTERM/SIGINT: the first stops gracefully (the caller's stop), a second exits at once.
export function onShutdownSignal(name: string, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`switchyard ${name}: second ${signal}, exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`switchyard ${name}: ${signal} received, shutting down gracefully (send again to exit now)\n`);
    stop().then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`switchyard ${name}: shutdown failed: ${err.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
