// Runs delivered jobs through the same in-process dispatch as sync calls, each under its
// deadline, and settles them: done (acknowledged in batches), retried or dead. Runs are keyed
// by their run token, never by job id: two runs of one job (a recovery while this process was
// frozen) are two different runs, and each settles only its own record in Redis. A settle is
// sent again until Redis has it (or the run's lease is gone): a run whose settle was lost
// would stay recorded under this live worker, its `last` key held, for good.
import { jobDeadline } from '../shared/call/errors';
import { dispatch } from '../shared/call/dispatch';
import type { LoadedApp } from '../shared/call/app';
import type { Reply } from '../shared/call/output';
import { RunAbort } from '../shared/call/run-abort';
import { log } from '../shared/log';
import { decodeJob, type Job } from '../shared/store/format/job';
import type { Queues } from '../shared/store/queues';
import type { DeliveredRun } from '../shared/store/store';
import { AckBatcher } from './acks';
import { endRunSpan, runEndOf, startRunSpan } from './run-span';
import { tracingOn } from '../shared/trace';
import { retryDelayMs, verdictFor } from './backoff';
import { monotonicMs } from './lease-clock';
import type { LeaseKeeper } from './lease-keeper';

export interface RunnerOptions {
  queues: Queues;
  keeper: LeaseKeeper;
  app: LoadedApp;
  attempts: number;
  backoffMs: number;
  deadMax: number;
  /** Deadline of a run whose call set no timeout. */
  jobTimeoutMs: number;
  /** How long finished jobs stay visible to lookup (0: not at all). */
  keepDoneMs: number;
  debug: boolean;
  /** Called after each run, for metrics. */
  observe?: (job: Job, outcome: string, ms: number) => void;
  /** While tracing: a run's span is a child of the call's PRODUCER span, not a new trace linked to it (--otel-parent). */
  traceAsChild?: boolean;
}

interface Run {
  /** Its key in `runs` and `settling`: partition and run token. */
  key: string;
  job: Job;
  /** The worker id the run was delivered to: its record in Redis is under this id … */
  workerId: string;
  /** … in this partition. */
  partition: number;
  abort: RunAbort;
  deadlineAt: number;
  /** Set when the run no longer counts (its lease was lost): its result is ignored. */
  abandoned: boolean;
}

/** How long a failed settle waits before it is sent again: doubling from the first, up to the last. */
const SETTLE_RETRY_MS = [100, 250, 500, 1000, 2000];

export class Runner {
  /** By partition and run token (each partition counts its own tokens). */
  private readonly runs = new Map<string, Run>();
  /** The earliest deadline of the runs held (Infinity: none), as last given to the keeper … */
  private heldUntil = Infinity;
  /** … and how many runs held have that deadline (whole ms): only when the last of them ends are the runs read again. */
  private atHeldUntil = 0;
  /**
   * Runs whose slot is free but whose record in Redis is not settled yet: a failure being sent
   * (again), or a `last` run past its deadline whose route has not returned (its key stays
   * held until it does). Same keys as `runs`.
   */
  private readonly settling = new Map<string, Run>();
  private level2 = 0;
  /** Acknowledgements of finished runs; the claim loop takes them along with its claims. */
  readonly acks: AckBatcher;
  private slotListeners: Array<() => void> = [];

  constructor(private readonly o: RunnerOptions) {
    this.acks = new AckBatcher(o.queues, (workerId) => o.keeper.lost(workerId, 'Redis refused an acknowledgement'), o.keepDoneMs);
    o.keeper.onLost((workerId) => this.abandon(workerId));
  }

  get running(): number {
    return this.runs.size;
  }

  get runningLevel2(): number {
    return this.level2;
  }

  /** Tokens of the runs this process holds for `workerId` (running, or finished but not yet acknowledged). */
  heldTokens(workerId: string, partition: number): number[] {
    const tokens = this.acks.pendingTokens(workerId, partition);
    for (const run of [...this.runs.values(), ...this.settling.values()])
      if (run.workerId === workerId && run.partition === partition) tokens.push(run.job.token);
    return tokens;
  }

  /** Resolves when a slot frees (a run ends or is abandoned). */
  slotFreed(): Promise<void> {
    return new Promise((resolve) => this.slotListeners.push(resolve));
  }

  /** Starts a delivered run unless the lease it was delivered under may already be gone. */
  async start(delivered: DeliveredRun, workerId: string): Promise<void> {
    let job: Job;
    try {
      job = decodeJob(delivered.token, delivered.payload);
    } catch (err) {
      // Not JSON: it cannot run, and retrying will not change that. The store buries it.
      const error = `unreadable payload: ${(err as Error).message}`;
      log.error({ event: 'job_dead', token: delivered.token, error }, error);
      await this.o.queues.fail(delivered.partition, workerId, delivered.token, { status: null, error }, this.o.deadMax).catch(() => undefined);
      return;
    }
    const timeoutMs = job.timeoutMs ?? this.o.jobTimeoutMs;
    const run: Run = {
      key: `${delivered.partition}:${job.token}`,
      job,
      workerId,
      partition: delivered.partition,
      abort: new RunAbort(),
      deadlineAt: monotonicMs() + timeoutMs,
      abandoned: false,
    };
    // Counted at once, so the claim loop sees the slot taken while the lease is checked.
    this.add(run);
    // A reply that sat in a frozen process may come after the lease ran out and the job was
    // recovered elsewhere: such a run must not start. When the lease surely holds now, the run
    // starts in this same turn of the event loop (nothing can block it in between: no await).
    let mayStart = this.o.keeper.surelyHolds(workerId);
    if (!mayStart) {
      mayStart = await this.o.keeper.mayStart(workerId).catch(() => false);
      // The answer may be old by now: another run's handler can have blocked the event loop
      // between it and this line (past the lease, which recovery then took back): ask again.
      if (mayStart && !this.o.keeper.surelyHolds(workerId)) mayStart = await this.o.keeper.mayStart(workerId).catch(() => false);
    }
    if (!mayStart || run.abandoned) {
      run.abandoned = true;
      this.remove(run);
      return;
    }
    const started = performance.now();
    // Only with an SDK registered: the run's CONSUMER span, linked to (or a child of) the call that queued it.
    const span = tracingOn() ? startRunSpan({ ...job, partition: run.partition }, this.o.traceAsChild ?? false, Date.now()) : undefined;
    let routeEnded: Promise<void> = Promise.resolve();
    const reply = await dispatch(
      this.o.app,
      {
        url: job.url,
        method: job.method,
        headers: job.headers,
        content: job.content,
        reply: false,
        queue: { level: job.level, policy: job.policy, key: job.key ?? '' },
      },
      {
        debug: this.o.debug,
        job: { id: job.id, attempt: job.attempt, fence: job.token },
        abort: run.abort,
        timeoutMs,
        deadline: jobDeadline,
        whenRouteEnds: (ended) => (routeEnded = ended),
        span,
      },
    );
    let outcome = 'abandoned';
    if (!run.abandoned) {
      // Moved from the runs to those settling: it still counts for the lease's deadline.
      this.remove(run, true);
      this.settling.set(run.key, run);
      try {
        outcome = await this.settle(run, reply, timeoutMs, routeEnded);
      } finally {
        this.settling.delete(run.key);
        this.released(run);
      }
    }
    if (span) endRunSpan(span, runEndOf(outcome, reply, run.abort.aborted));
    this.o.observe?.(job, outcome, performance.now() - started);
  }

  private async settle(run: Run, reply: Reply, timeoutMs: number, routeEnded: Promise<void>): Promise<string> {
    const { job, workerId } = run;
    const verdict = verdictFor(reply.status, job.attempt, job.attempts ?? this.o.attempts);
    if (verdict === 'done') {
      this.acks.add(workerId, run.partition, job, 'done', reply.status);
      return 'done';
    }
    if (reply.status === 504 && run.abort.aborted) {
      log.warn(
        { event: 'job_timed_out', id: job.id, queue: `L${job.level}`, url: job.url, attempt: job.attempt, timeoutMs },
        `job ${job.id} ${job.method} ${job.url} passed its ${timeoutMs} ms deadline`,
      );
      // Its slot is free now, but a `last` key runs once at a time: the next run of the key
      // may start only when this route has returned (its signal told it to stop).
      if (job.policy === 'last') {
        this.holdLease();
        await routeEnded;
        if (run.abandoned) return 'abandoned';
      }
    }
    return this.failRun(run, reply, verdict);
  }

  private async failRun(run: Run, reply: Reply, verdict: 'retry' | 'dead'): Promise<string> {
    const { workerId, partition, job } = run;
    const error = reply.error ?? (typeof reply.data === 'string' ? reply.data : JSON.stringify(reply.data));
    const o = this.o;
    const plan = verdict === 'retry' ? { retryDelayMs: retryDelayMs(job.backoffMs ?? o.backoffMs, job.attempt) } : { status: reply.status, error };
    let outcome: string;
    // Sent until Redis has it: failJob is safe to repeat (a run already settled answers 'gone').
    for (let tries = 0; ; tries++) {
      try {
        outcome = await o.queues.fail(partition, workerId, job.token, plan, o.deadMax);
        break;
      } catch (err) {
        if (tries === 0)
          log.warn(
            { event: 'settle_failed', id: job.id, err: { message: (err as Error).message } },
            `job ${job.id} could not be settled yet (${(err as Error).message}); sending it again until Redis answers`,
          );
        if (run.abandoned) return 'abandoned';
        await new Promise((resolve) => setTimeout(resolve, SETTLE_RETRY_MS[Math.min(tries, SETTLE_RETRY_MS.length - 1)]));
        if (run.abandoned) return 'abandoned';
      }
    }
    if (outcome === 'lost') {
      o.keeper.lost(workerId, 'Redis refused to settle a failed run');
      return 'abandoned';
    }
    const fields = { id: job.id, queue: `L${job.level}`, url: job.url, attempt: job.attempt, status: reply.status, error };
    if (outcome === 'dead') log.error({ event: 'job_dead', ...fields }, `job ${job.id} ${job.url} is dead after ${job.attempt} attempt(s): ${error}`);
    else
      log.warn({ event: 'job_failed', ...fields, next: outcome }, `job ${job.id} ${job.url} failed (attempt ${job.attempt}, status ${reply.status}): ${error}`);
    return outcome === 'retry' ? 'retried' : outcome;
  }

  /** Every run of a lost worker id: told to stop, its slot freed, its result to be ignored. */
  private abandon(workerId: string): void {
    this.acks.forget(workerId);
    for (const run of this.settling.values()) if (run.workerId === workerId) run.abandoned = true;
    for (const run of [...this.runs.values()]) {
      if (run.workerId !== workerId) continue;
      run.abandoned = true;
      run.abort.abort(new Error('the worker lost its lease: this run is abandoned and runs again elsewhere'));
      this.remove(run);
    }
  }

  private add(run: Run): void {
    this.runs.set(run.key, run);
    if (run.job.level === 2) this.level2++;
    // A new run can only bring the earliest deadline forward: no need to read every run.
    if (run.deadlineAt < this.heldUntil) {
      this.heldUntil = run.deadlineAt;
      this.atHeldUntil = 1;
      this.o.keeper.holdUntil(run.deadlineAt);
    } else if (run.deadlineAt === this.heldUntil) this.atHeldUntil++;
  }

  /** A run leaves `runs` (its slot is free); `settling`: it stays held while its settle is sent. */
  private remove(run: Run, settling = false): void {
    if (!this.runs.delete(run.key)) return;
    if (run.job.level === 2) this.level2--;
    if (!settling) this.released(run);
    const listeners = this.slotListeners;
    this.slotListeners = [];
    for (const resolve of listeners) resolve();
  }

  /** A run is no longer held at all: the lease's deadline moves on once no run holds the earliest. */
  private released(run: Run): void {
    if (run.deadlineAt === this.heldUntil && --this.atHeldUntil <= 0) this.holdLease();
  }

  /**
   * While the event loop is blocked, the renewal thread keeps the lease until this time: the
   * earliest deadline of the runs this process holds (a `last` run waiting for its route counts
   * too, its deadline passed). The thread cannot tell which run blocks the loop, but that run's
   * own deadline is never earlier than this: a wedged run cannot keep the lease past its own
   * deadline because a longer run is held beside it.
   */
  private holdLease(): void {
    let earliest = Infinity;
    let at = 0;
    for (const held of [this.runs, this.settling]) {
      for (const run of held.values()) {
        if (run.deadlineAt < earliest) [earliest, at] = [run.deadlineAt, 1];
        else if (run.deadlineAt === earliest) at++;
      }
    }
    this.atHeldUntil = at;
    if (earliest === this.heldUntil) return;
    this.heldUntil = earliest;
    this.o.keeper.holdUntil(earliest === Infinity ? 0 : earliest);
  }

  /** Waits up to graceMs for the runs to end; true when none is left. */
  async drain(graceMs: number): Promise<boolean> {
    const until = Date.now() + graceMs;
    while ((this.runs.size > 0 || this.settling.size > 0) && Date.now() < until) {
      await Promise.race([this.slotFreed(), new Promise((resolve) => setTimeout(resolve, Math.min(100, until - Date.now())))]);
    }
    // Acknowledgements still on their way get what is left of the grace; past it the worker
    // hands its runs back (their jobs run again: at least once).
    await Promise.race([this.acks.flush(), new Promise((resolve) => setTimeout(resolve, Math.max(0, until - Date.now())))]);
    this.acks.stop();
    return this.runs.size === 0 && this.settling.size === 0;
  }

  /** Aborts whatever still runs (shutdown after the grace period: it is handed back). */
  abortAll(reason: string): void {
    for (const run of this.settling.values()) run.abandoned = true;
    for (const run of this.runs.values()) {
      run.abandoned = true;
      run.abort.abort(new Error(reason));
    }
  }
}
