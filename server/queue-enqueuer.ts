// Async calls: one enqueue script per message, its outcome turned into the caller's reply.
import type { Reply } from '../shared/call/output';
import type { CallRequest } from '../shared/call/params';
import { discardDropped, level2Refused, notReplicated, queueUnavailable, replyFor } from '../shared/errors';
import { log } from '../shared/ops/log';
import type { Queues } from '../shared/store/queues';
import type { AdmissionLimits } from '../shared/store/store';
import type { Enqueuer } from './rpc-service';

export class QueueEnqueuer implements Enqueuer {
  private redisAway = false;

  constructor(
    private readonly queues: Queues,
    private readonly limits: AdmissionLimits,
  ) {}

  async enqueue(request: CallRequest): Promise<Reply> {
    let result;
    try {
      result = await this.queues.enqueue(request, this.limits);
    } catch (err) {
      // ioredis' own words go to the log (once per outage), ours to the caller.
      if (!this.redisAway) log.warn({ event: 'enqueue_failed', err: { message: (err as Error).message } }, `async calls answer 503: ${(err as Error).message}`);
      this.redisAway = true;
      return replyFor(queueUnavailable());
    }
    this.redisAway = false;
    const { id, outcome, replicas } = result;
    const asked = this.limits.replicasAck ?? 0;
    if (asked > 0 && replicas !== undefined && replicas < asked && (outcome === 'queued' || outcome === 'replaced')) {
      return replyFor(notReplicated(replicas, asked, this.limits.replicasTimeoutMs ?? 0));
    }
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
