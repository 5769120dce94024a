// What a route finds in `ctx.state.rpc`: how it was called, and for a job, which run this is.
import type { Level, Policy } from './params';

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
}
