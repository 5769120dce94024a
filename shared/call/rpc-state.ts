// What a route finds in `ctx.state.rpc`: how it was called, and for a job, which run this is.
import type { Level, Policy } from '../levels';

export interface RpcState {
  /** true: a sync call (the caller waits for the answer); false: an async job run by a worker. */
  reply: boolean;
  level: Level | null;
  policy: Policy | null;
  /** The coalescing key of a `last` job, else null. */
  key: string | null;
  jobId: string | null;
  /** 1 for the first run of a job, then 2, 3, … for its retries and recoveries. */
  attempt: number;
  /**
   * The run's fencing token (jobs only, null for sync calls). It grows with every run the
   * deployment starts, so a later run of a `last` key always carries a larger one: a handler
   * that stores the token beside its write can refuse a write with a smaller one, the write
   * of a run that kept going after its worker was declared dead.
   */
  fence: number | null;
  /**
   * Aborted when the run should stop: a sync call's deadline passed or its caller cancelled;
   * a job's deadline passed or its worker lost the lease. The result of an aborted run is ignored.
   */
  readonly signal: AbortSignal;
}
