// Acknowledgements of finished runs: those of one turn of the event loop go to Redis in one
// script call per worker id. While Redis is away they are kept (bounded by the concurrency)
// and sent again; acknowledging twice is harmless (the second finds nothing to remove).
import { log } from '../shared/ops/log';
import type { Job } from '../shared/store/job';
import type { Ack, Store } from '../shared/store/store';

const RETRY_EVERY_MS = 250;
const MAX_TRIES = 40;

export class AckBatcher {
  private pending = new Map<string, Ack[]>();
  private scheduled = false;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    /** Redis refused the acknowledgements of `workerId`: its lease had run out. */
    private readonly onLost: (workerId: string) => void,
  ) {}

  add(workerId: string, job: Job, outcome: Ack['outcome']): void {
    let list = this.pending.get(workerId);
    if (!list) this.pending.set(workerId, (list = []));
    list.push({ job, outcome });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
  }

  /** Tokens acknowledged here but not yet in Redis (they are not orphans). */
  pendingTokens(workerId: string): number[] {
    return (this.pending.get(workerId) ?? []).map((ack) => ack.job.token).concat(this.sending.get(workerId) ?? []);
  }

  /** The id's lease is gone: its acknowledgements would be refused, and its runs run again. */
  forget(workerId: string): void {
    this.pending.delete(workerId);
  }

  private readonly sending = new Map<string, number[]>();

  flush(): Promise<void> {
    this.scheduled = false;
    const batches = this.pending;
    this.pending = new Map();
    const round = Promise.all([...batches].map(([workerId, acks]) => this.send(workerId, acks)));
    this.flushing = this.flushing.then(() => round).then(() => undefined);
    return this.flushing;
  }

  private async send(workerId: string, acks: Ack[]): Promise<void> {
    this.sending.set(workerId, [...(this.sending.get(workerId) ?? []), ...acks.map((a) => a.job.token)]);
    try {
      for (let tries = 1; ; tries++) {
        try {
          if ((await this.store.finish(workerId, acks)) === 'lost') this.onLost(workerId);
          return;
        } catch (err) {
          if (tries >= MAX_TRIES) {
            log.warn(
              { event: 'acks_undelivered', worker: workerId, runs: acks.length, err: { message: (err as Error).message } },
              `${acks.length} acknowledgement(s) not delivered; those jobs will run again`,
            );
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY_MS));
        }
      }
    } finally {
      const tokens = new Set(acks.map((a) => a.job.token));
      this.sending.set(
        workerId,
        (this.sending.get(workerId) ?? []).filter((t) => !tokens.has(t)),
      );
    }
  }
}
