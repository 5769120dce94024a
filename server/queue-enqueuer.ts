// Async calls: one enqueue script per message, its outcome turned into the caller's reply. A
// failure is answered with what is known about the job (docs/protocol.md, section 3): never
// sent (not queued), sent without an answer (outcome unknown), or refused by a full Redis.
import type { Reply } from '../shared/call/output';
import type { CallRequest } from '../shared/call/params';
import { discardDropped, level2Refused, notQueued, notReplicated, outcomeUnknown, queueFull, replyFor, type SwitchyardError } from '../shared/call/errors';
import { log } from '../shared/log';
import type { Queues } from '../shared/store/queues';
import type { RedisClient } from '../shared/store/redis';
import type { AdmissionLimits } from '../shared/store/store';
import type { Enqueuer } from './rpc-service';

// ioredis refuses these before writing anything to a socket (Redis.sendCommand, Cluster's sendCommand).
const NEVER_SENT = [
  "Stream isn't writeable",
  "Cluster isn't ready",
  'None of startup nodes is available',
  'Failed to refresh slots cache',
  'Cluster is disconnected',
];
// Redis errors that refuse a command before it runs (a script that started is never refused with these).
const REFUSED_BEFORE_RUNNING = /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF|BUSY|NOAUTH|NOPERM|WRONGPASS|CROSSSLOT)\b/;
// Sent, then no answer: the command timeout fired, or the connection closed while the command was
// in flight (maxRetriesPerRequest 0 flushes the sent commands with MaxRetriesPerRequestError).
const NO_ANSWER_IN_TIME = 'Command timed out';
/** Between two tries of a call that was never run: the connection's state may lag its socket. */
const RETRY_PAUSE_MS = 25;

/** What the caller is told when the enqueue failed with `err` (ioredis' error; classified by its text). */
export function enqueueFailure(err: unknown): SwitchyardError {
  const message = err instanceof Error ? err.message : String(err);
  if (message.includes('OOM command not allowed')) return queueFull();
  if (NEVER_SENT.some((text) => message.startsWith(text))) return notQueued('no connection to Redis');
  const refused = REFUSED_BEFORE_RUNNING.exec(message);
  if (refused) return notQueued(`Redis refused the command (${refused[1]})`);
  if (message === NO_ANSWER_IN_TIME) return outcomeUnknown('Redis did not answer in time');
  return outcomeUnknown('the connection to Redis dropped before Redis answered');
}

/**
 * Calls that arrive while the connection is not ready (starting, reconnecting) wait for it, within
 * their own budget, instead of failing at once: one 'ready' listener serves every waiting call.
 */
class ConnectionReady {
  private readonly waiters = new Set<() => void>();

  constructor(private readonly redis: RedisClient) {
    redis.on('ready', () => {
      for (const wake of this.waiters) wake();
    });
  }

  ready(): boolean {
    return this.redis.status === 'ready';
  }

  /** True once the connection is ready, false when `waitMs` passed first. */
  wait(waitMs: number): Promise<boolean> {
    if (this.ready()) return Promise.resolve(true);
    if (!(waitMs > 0)) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ready: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(ready);
      };
      const wake = (): void => done(true);
      const timer = setTimeout(() => done(this.redis.status === 'ready'), waitMs);
      this.waiters.add(wake);
    });
  }
}

export class QueueEnqueuer implements Enqueuer {
  private redisAway = false;
  private readonly connection: ConnectionReady;

  constructor(
    private readonly queues: Queues,
    private readonly limits: AdmissionLimits,
  ) {
    this.connection = new ConnectionReady(queues.redis);
  }

  async enqueue(request: CallRequest, connectWaitMs: number): Promise<Reply> {
    const until = performance.now() + connectWaitMs;
    let result;
    for (;;) {
      const left = until - performance.now();
      if (!this.connection.ready() && !(await this.connection.wait(left))) {
        this.noteFailure(`no connection to Redis within ${Math.max(0, Math.round(connectWaitMs))} ms`);
        return replyFor(notQueued('no connection to Redis'));
      }
      const started = performance.now();
      try {
        result = await this.queues.enqueue(request, this.limits);
        break;
      } catch (err) {
        const took = performance.now() - started;
        this.noteFailure((err as Error).message);
        const failure = enqueueFailure(err);
        // Never run (a connection that dropped just before the call, a master being replaced):
        // nothing is queued, so the call waits for the connection and goes again within its
        // budget rather than answer "not queued" while Redis is a moment away. Another try is
        // made only when the pause and twice what this one took still fit: on a loaded machine a
        // refusal's round trip is slow, and the answer must reach the caller before its deadline.
        if (failure.code !== 'QUEUE_NOT_QUEUED' || until - performance.now() < RETRY_PAUSE_MS + 2 * took) return replyFor(failure);
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
      }
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
      case 'duplicate':
        // The caller's id is still known: this is a retry of a job already taken, not a new one.
        return { status: 200, data: { id, state: 'duplicate' } };
      case 'refused':
        return replyFor(level2Refused());
      case 'dropped':
        return replyFor(discardDropped(request.queue!.level, this.limits.discardThreshold));
    }
  }

  /** ioredis' own words go to the log, once per outage; the caller reads ours. */
  private noteFailure(cause: string): void {
    if (!this.redisAway) log.warn({ event: 'enqueue_failed', err: { message: cause } }, `async calls answer 503: ${cause}`);
    this.redisAway = true;
  }
}
