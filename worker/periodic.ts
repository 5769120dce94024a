// A chore run every `everyMs` while started: never two at once; a failure is logged (once per
// spell of failures, e.g. a Redis outage) and the next round runs as usual: a failing round
// must not stop the chore for the whole deployment.
import { log } from '../shared/log';

export interface Part {
  start(): void;
  stop(): Promise<void>;
}

export function periodic(name: string, everyMs: number, task: () => Promise<void>): Part {
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> = Promise.resolve();
  let busy = false;
  let failing = false;
  const tick = (): void => {
    if (busy) return;
    busy = true;
    round = task()
      .then(
        () => {
          failing = false;
        },
        (err: Error) => {
          if (!failing)
            log.warn({ event: 'chore_failed', chore: name, err: { message: err?.message ?? String(err) } }, `${name} failed: ${err?.message ?? err}`);
          failing = true;
        },
      )
      .finally(() => (busy = false));
  };
  return {
    start() {
      timer = setInterval(tick, everyMs);
    },
    async stop() {
      clearInterval(timer);
      await round;
    },
  };
}
