// Acknowledgements of finished runs: those of one turn of the event loop go to Redis in one
// script call per worker id and partition — with the next claim of that id and partition when
// the claim loop is about to send one (take: claimJobs settles them first, in the same call),
// else alone (finishJobs). A batch waits for a claim one more turn of the event loop at most.
// While Redis is away they are kept (bounded by the concurrency) and sent again until Redis
// has them, the worker id's lease is gone, or the worker stops (then its runs are handed back
// and run again); acknowledging twice is harmless (the second finds nothing to remove), so a
// claim whose reply was lost sends the acknowledgements it carried again, alone. Giving up
// earlier would strand the runs: they stay recorded under a live worker, which recovery never
// takes back.
import { log } from '../shared/log';
import type { Job } from '../shared/store/format/job';
import type { Queues } from '../shared/store/queues';
import type { Ack, ClaimSettles } from '../shared/store/store';

/** Waits between sends of a batch Redis did not take: doubling from the first, up to the last. */
const RETRY_MS = [100, 250, 500, 1000, 2000];

export class AckBatcher {
  private pending = new Map<string, Ack[]>();
  private scheduled = false;
  /** True while the claim loop is about to send a claim (which takes the batches along). */
  private claimComing: () => boolean = () => false;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly queues: Queues,
    /** Redis refused the acknowledgements of `workerId`: its lease had run out. */
    private readonly onLost: (workerId: string) => void,
    /** How long finished jobs stay visible to lookup (--keep-done). */
    private readonly keepMs = 0,
  ) {}

  add(workerId: string, partition: number, job: Job, outcome: Ack['outcome'], status: number): void {
    const batch = `${partition}:${workerId}`;
    let list = this.pending.get(batch);
    if (!list) this.pending.set(batch, (list = []));
    list.push({ job, outcome, status });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        // A claim about to be sent in this turn takes the batch along; past one more turn the
        // batch goes alone all the same (that claim may be waiting for Redis).
        if (this.claimComing()) setImmediate(() => void this.flush());
        else void this.flush();
      });
    }
  }

  /** The claim loop tells when a claim is about to be sent: batches wait one turn more for it. */
  awaitClaims(coming: () => boolean): void {
    this.claimComing = coming;
  }

  /**
   * The batch of `workerId` in `partition`, taken to ride on a claim: its tokens still count as
   * held (pendingTokens) until rode() says how the claim went.
   */
  take(workerId: string, partition: number): ClaimSettles | undefined {
    const batch = `${partition}:${workerId}`;
    const acks = this.pending.get(batch);
    if (!acks || this.stopped) return undefined;
    this.pending.delete(batch);
    let sending = this.sending.get(batch);
    if (!sending) this.sending.set(batch, (sending = new Set()));
    for (const ack of acks) sending.add(ack.job.token);
    return { acks, keepMs: this.keepMs };
  }

  /**
   * How the claim that carried a taken batch went: answered (the acknowledgements are in Redis,
   * or were refused with the claim because the lease had run out: the claimer reports that), or
   * failed (the reply may be lost: they are sent again, alone, until Redis has them).
   */
  rode(workerId: string, partition: number, settles: ClaimSettles, answered: boolean): void {
    const batch = `${partition}:${workerId}`;
    if (!answered) {
      const resend = this.send(batch, settles.acks);
      this.flushing = this.flushing.then(() => resend);
      return;
    }
    const sending = this.sending.get(batch);
    if (sending) for (const ack of settles.acks) sending.delete(ack.job.token);
  }

  /** Tokens acknowledged here but not yet in Redis (they are not orphans). */
  pendingTokens(workerId: string, partition: number): number[] {
    const batch = `${partition}:${workerId}`;
    return (this.pending.get(batch) ?? []).map((ack) => ack.job.token).concat([...(this.sending.get(batch) ?? [])]);
  }

  /** The id's lease is gone: its acknowledgements would be refused, and its runs run again. */
  forget(workerId: string): void {
    this.forgotten.add(workerId);
    for (const batch of [...this.pending.keys()]) if (batch.endsWith(`:${workerId}`)) this.pending.delete(batch);
  }

  /** Shutdown: batches still being sent stop trying (the worker hands its runs back). */
  stop(): void {
    this.stopped = true;
  }

  private readonly forgotten = new Set<string>();
  private stopped = false;

  /** Tokens of acknowledgements on their way to Redis, per batch. */
  private readonly sending = new Map<string, Set<number>>();

  flush(): Promise<void> {
    this.scheduled = false;
    const batches = this.pending;
    this.pending = new Map();
    const round = Promise.all([...batches].map(([batch, acks]) => this.send(batch, acks)));
    this.flushing = this.flushing.then(() => round).then(() => undefined);
    return this.flushing;
  }

  private async send(batch: string, acks: readonly Ack[]): Promise<void> {
    const colon = batch.indexOf(':');
    const [partition, workerId] = [Number(batch.slice(0, colon)), batch.slice(colon + 1)];
    let sending = this.sending.get(batch);
    if (!sending) this.sending.set(batch, (sending = new Set()));
    for (const ack of acks) sending.add(ack.job.token);
    try {
      for (let tries = 0; ; tries++) {
        try {
          if ((await this.queues.finish(partition, workerId, acks, this.keepMs)) === 'lost') this.onLost(workerId);
          return;
        } catch (err) {
          if (tries === 0)
            log.warn(
              { event: 'acks_delayed', worker: workerId, runs: acks.length, err: { message: (err as Error).message } },
              `${acks.length} acknowledgement(s) not delivered yet (${(err as Error).message}); sending them again until Redis answers`,
            );
          if (this.stopped || this.forgotten.has(workerId)) return;
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS[Math.min(tries, RETRY_MS.length - 1)]));
          if (this.stopped || this.forgotten.has(workerId)) return;
        }
      }
    } finally {
      for (const ack of acks) sending.delete(ack.job.token);
    }
  }
}
