// The clock and the memory the lease keeper shares with its renewal thread. Monotonic
// milliseconds (CLOCK_MONOTONIC via hrtime: the same in every thread of the process, unlike
// performance.now(), whose origin is per thread). Only durations are measured with it; the
// lease itself lives on Redis's clock.

export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** Slots of the shared array (BigInt64, read and written with Atomics). */
export const SLOT = {
  /** The main thread's last heartbeat: its event loop turned at this time. */
  heartbeat: 0,
  /** Renew while now ≤ this, however stale the heartbeat: the latest deadline of a running job. */
  holdUntil: 1,
  /** The lease surely holds in Redis until this time: sent time of the last renewal + lease. */
  validUntil: 2,
} as const;

export class LeaseClock {
  readonly slots: BigInt64Array;
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(8 * 3)) {
    this.slots = new BigInt64Array(buffer);
  }
  get(slot: number): number {
    return Number(Atomics.load(this.slots, slot));
  }
  set(slot: number, ms: number): void {
    Atomics.store(this.slots, slot, BigInt(Math.round(ms)));
  }
  /** Moves a slot forward only (two threads write validUntil). */
  raise(slot: number, ms: number): void {
    if (ms > this.get(slot)) this.set(slot, ms);
  }
}

/**
 * The timing of a lease of `leaseMs`. Renewals come every tenth of it, and each one holds the
 * lease in Redis for the lease plus one renewal period: so a stall of the whole process (even
 * SIGSTOP, which stops the renewal thread too) shorter than the lease never loses it, whenever
 * in the renewal period it begins. A worker that died is recovered between 1 and 1.1 leases
 * after its last renewal. While the main loop is blocked the thread keeps renewing for half a
 * lease after its last heartbeat (longer while a job is within its deadline).
 */
export function leaseTiming(leaseMs: number): { renewEveryMs: number; heldForMs: number; staleAfterMs: number } {
  const renewEveryMs = Math.max(20, Math.floor(leaseMs / 10));
  return { renewEveryMs, heldForMs: leaseMs + renewEveryMs, staleAfterMs: Math.max(renewEveryMs + 100, Math.floor(leaseMs / 2)) };
}
