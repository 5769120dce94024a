// Async calls: one enqueue script per message, its outcome turned into SPEC section 1 replies.
import type { Reply } from '../shared/call/output';
import type { CallRequest } from '../shared/call/params';
import type { AdmissionLimits, Store } from '../shared/store/store';
import type { Enqueuer } from './rpc-service';

export const LEVEL2_REFUSED = 'queue of status level2 is not active';

export class QueueEnqueuer implements Enqueuer {
  constructor(
    private readonly store: Store,
    private readonly limits: AdmissionLimits,
  ) {}

  async enqueue(request: CallRequest): Promise<Reply> {
    let result;
    try {
      result = await this.store.enqueue(request, this.limits);
    } catch (err) {
      return { status: 503, data: `queue unavailable: ${(err as Error).message}` };
    }
    const { id, outcome } = result;
    switch (outcome) {
      case 'queued':
      case 'replaced':
        return { status: 201, data: { id, state: outcome } };
      case 'refused':
        return { status: 409, data: { state: 'refused', message: LEVEL2_REFUSED } };
      case 'dropped':
        return { status: 409, data: { state: 'dropped', message: `discardable message dropped: level ${request.queue!.level} backlog is at or over the discard threshold (${this.limits.discardThreshold})` } };
    }
  }
}
