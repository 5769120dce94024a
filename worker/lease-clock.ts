// The clock and the memory the lease keeper shares with its renewal thread. Monotonic
// milliseconds (CLOCK_MONOTONIC via hrtime: the same in every thread of the process, unlike
// performance.now(), whose origin is per thread). Only durations are measured with it; the
// lease itself lives on Redis's clock.

export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** Slots of the whole process (BigInt64, read and written with Atomics). */
export const SLOT = {
  /** The main thread's last heartbeat: its event loop turned at this time. */
  heartbeat: 0,
  /** Renew while now ≤ this, however stale the heartbeat: the latest deadline of a running job. */
  holdUntil: 1,
} as const;

/** Why the renewal thread could not renew a partition's lease lately (it says so when the lease is lost). */
export const TROUBLE = { none: 0, unreachable: 1, stalled: 2 } as const;

const PROCESS_SLOTS = 2;
const PARTITION_SLOTS = 4;

/**
 * Each partition has a lease of its own, under an id of its own (lease-keeper.ts), so each has
 * its slots: the lease of partition p is renewed, trusted and lost without regard to the others.
 */
export const PARTITION_SLOT = {
  /** The lease surely holds in Redis until this time: sent time of the last renewal + lease. */
  validUntil: 0,
  /** The generation of the partition's id (a new one after each loss: an id lives once). */
  generation: 1,
  /** 1 while the id of this generation is registered and not lost; 0 otherwise. */
  registered: 2,
  /** TROUBLE: what kept the thread from renewing since the last renewal that succeeded. */
  trouble: 3,
} as const;

export class LeaseClock {
  readonly slots: BigInt64Array;
  constructor(
    readonly partitions = 1,
    readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(8 * (PROCESS_SLOTS + PARTITION_SLOTS * partitions)),
  ) {
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
  /** The index of one of partition p's slots (PARTITION_SLOT). */
  of(partition: number, slot: number): number {
    return PROCESS_SLOTS + PARTITION_SLOTS * partition + slot;
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

/**
 * The id a worker holds in partition `partition` of a deployment of `partitions`, in its
 * `generation`: the process's base id alone with one partition, else the base id, the
 * partition and the generation (a lost lease costs that partition's id only).
 */
export function partitionWorkerId(baseId: string, partitions: number, partition: number, generation: number): string {
  return partitions === 1 ? (generation === 0 ? baseId : `${baseId}.${generation}`) : `${baseId}/p${partition}.${generation}`;
}
