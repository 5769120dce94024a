// The renewal thread: keeps the worker's leases in Redis from its own event loop, which job
// handlers cannot block. It renews only while the main thread shows it is alive (a fresh
// heartbeat) or is inside a running job's deadline (a handler may block its loop that long);
// past that the process counts as dead, and once a lease has surely run out the main thread
// is told it lost that lease's runs. Each partition's lease is renewed on its own: a partition
// whose Redis errors or hangs loses its own lease once it has surely run out, and the others
// are renewed as before (docs/design.md, "A partition's outage").
import { parentPort, workerData } from 'node:worker_threads';
import { Queues } from '../shared/store/queues';
import { createRedis } from '../shared/store/redis';
import { LeaseClock, leaseTiming, monotonicMs, PARTITION_SLOT, partitionWorkerId, SLOT, TROUBLE } from './lease-clock';

export interface LeaseThreadData {
  redisUrl: string;
  prefix: string;
  partitions: number;
  leaseMs: number;
  /** The process's id; each partition's id derives from it and the generation in shared memory. */
  baseId: string;
  buffer: SharedArrayBuffer;
}

/** Messages to the main thread: the lease of `workerId` (partition `partition`) is gone, and why. */
export interface LeaseLostMessage {
  type: 'lost';
  workerId: string;
  partition: number;
  why: string;
}

const data = workerData as LeaseThreadData;
const clock = new LeaseClock(data.partitions, data.buffer);
const redis = createRedis(data.redisUrl, 'lease');
const queues = new Queues(redis, data.prefix, data.partitions);
/** A heartbeat older than staleAfterMs means the main loop is stalled (see docs/design.md, Leases). */
const { renewEveryMs, heldForMs, staleAfterMs } = leaseTiming(data.leaseMs);

interface Renewal {
  /** A renewal of this partition waits for Redis (a hung master must not hold back the others). */
  busy: boolean;
  /** The generation whose loss was reported (once each). */
  lostGeneration: number;
  /** The last error of a renewal, for the report. */
  lastError?: string;
}
const renewals: Renewal[] = Array.from({ length: data.partitions }, () => ({ busy: false, lostGeneration: -1 }));

const slot = (p: number, s: number): number => clock.of(p, s);

function lost(p: number, generation: number, why: string): void {
  const r = renewals[p];
  if (r.lostGeneration === generation) return;
  r.lostGeneration = generation;
  // The main thread zeroes validUntil itself, for the id it knows is current.
  const workerId = partitionWorkerId(data.baseId, data.partitions, p, generation);
  parentPort!.postMessage({ type: 'lost', workerId, partition: p, why } satisfies LeaseLostMessage);
}

function unreachableWhy(p: number): string {
  const last = renewals[p].lastError;
  return `${data.partitions > 1 ? `partition ${p}'s Redis` : 'Redis'} did not renew it for longer than the lease${last ? ` (${last})` : ''}`;
}

async function renew(p: number, alive: boolean, now: number): Promise<void> {
  const r = renewals[p];
  if (clock.get(slot(p, PARTITION_SLOT.registered)) !== 1) return;
  const generation = clock.get(slot(p, PARTITION_SLOT.generation));
  if (r.lostGeneration === generation) return;
  const expired = now > clock.get(slot(p, PARTITION_SLOT.validUntil));
  if (!alive) {
    clock.set(slot(p, PARTITION_SLOT.trouble), TROUBLE.stalled);
    if (expired) lost(p, generation, 'the process stalled past its lease');
    return;
  }
  if (r.busy) {
    // The last renewal has not come back (a master that hangs): once the lease has surely run out, it is lost.
    if (expired) lost(p, generation, unreachableWhy(p));
    return;
  }
  r.busy = true;
  const id = partitionWorkerId(data.baseId, data.partitions, p, generation);
  try {
    const sentAt = monotonicMs();
    const held = await queues.renewLease(id, heldForMs, p);
    // The main thread may have lost this id meanwhile (and registered the next): then this answer is old news.
    if (clock.get(slot(p, PARTITION_SLOT.generation)) !== generation || clock.get(slot(p, PARTITION_SLOT.registered)) !== 1) return;
    if (held) {
      clock.raise(slot(p, PARTITION_SLOT.validUntil), sentAt + heldForMs);
      clock.set(slot(p, PARTITION_SLOT.trouble), TROUBLE.none);
      r.lastError = undefined;
    } else lost(p, generation, 'Redis refused to renew it: it had run out there');
  } catch (err) {
    // This partition's Redis is away: its lease runs on; once it has surely run out, its runs are lost.
    clock.set(slot(p, PARTITION_SLOT.trouble), TROUBLE.unreachable);
    r.lastError = (err as Error).message;
    if (monotonicMs() > clock.get(slot(p, PARTITION_SLOT.validUntil))) lost(p, generation, unreachableWhy(p));
  } finally {
    r.busy = false;
  }
}

function tick(): void {
  const now = monotonicMs();
  const alive = now - clock.get(SLOT.heartbeat) <= staleAfterMs || now <= clock.get(SLOT.holdUntil);
  for (let p = 0; p < data.partitions; p++) void renew(p, alive, now);
}

const timer = setInterval(tick, renewEveryMs);
parentPort!.on('message', (message: { type: 'stop' }) => {
  if (message.type === 'stop') {
    clearInterval(timer);
    redis.disconnect();
    parentPort!.close();
  }
});
void redis.connect().catch(() => undefined);
