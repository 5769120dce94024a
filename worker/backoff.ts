// Retry policy, pure: what happens to a job after a run, and when its next attempt is due.

export type RunVerdict = 'done' | 'retry' | 'dead';

/** 2xx/3xx done; 4xx dead at once (retrying will not help); 5xx or a throw retried while attempts remain. */
export function verdictFor(status: number, attempt: number, attempts: number): RunVerdict {
  if (status < 400) return 'done';
  if (status < 500) return 'dead';
  return attempt < attempts ? 'retry' : 'dead';
}

const MAX_DELAY_MS = 60 * 60 * 1000;

/**
 * Delay before attempt `attempt + 1`: base × 2^(attempt-1), capped at an hour, with "equal
 * jitter" (half fixed, half random) so that a burst of failures does not retry in lockstep.
 */
export function retryDelayMs(baseMs: number, attempt: number, random: () => number = Math.random): number {
  const exponential = Math.min(MAX_DELAY_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + random() * (exponential / 2));
}
