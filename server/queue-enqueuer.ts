// Async calls: one enqueue script per message, its outcome turned into the caller's reply.
import type { Reply } from '../shared/call/output';
import type { CallRequest } from '../shared/call/params';
import { discardDropped, level2Refused, queueUnavailable, replyFor } from '../shared/errors';
import { log } from '../shared/ops/log';
import type { AdmissionLimits, Store } from '../shared/store/store';
import type { Enqueuer } from './rpc-service';

export class QueueEnqueuer implements Enqueuer {
  private redisAway = false;

  constructor(
    private readonly store: Store,
    private readonly limits: AdmissionLimits,
  ) {}

  async enqueue(request: CallRequest): Promise<Reply> {
    let result;
    try {
      result = await this.store.enqueue(request, this.limits);
    } catch (err) {
      // ioredis' own words go to the log (once per outage), ours to the caller.
      if (!this.redisAway) log.warn({ event: 'enqueue_failed', err: { message: (err as Error).message } }, `async calls answer 503: ${(err as Error).message}`);
      this.redisAway = true;
      return replyFor(queueUnavailable());
    }
    this.redisAway = false;
    const { id, outcome } = result;
    switch (outcome) {
      case 'queued':
      case 'replaced':
        return { status: 201, data: { id, state: outcome } };
      case 'refused':
        return replyFor(level2Refused());
      case 'dropped':
        return replyFor(discardDropped(request.queue!.level, this.limits.discardThreshold));
    }
  }
}
