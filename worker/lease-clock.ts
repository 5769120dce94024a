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
