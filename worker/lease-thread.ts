// The renewal thread: keeps the worker's lease in Redis from its own event loop, which job
// handlers cannot block. It renews only while the main thread shows it is alive (a fresh
// heartbeat) or is inside a running job's deadline (a handler may block its loop that long);
// past that the process counts as dead, and once the lease has surely run out the main thread
// is told it lost its runs.
import { parentPort, workerData } from 'node:worker_threads';
import { Queues } from '../shared/store/queues';
import { createRedis } from '../shared/store/redis';
import { LeaseClock, leaseTiming, monotonicMs, SLOT } from './lease-clock';

export interface LeaseThreadData {
  redisUrl: string;
  prefix: string;
  partitions: number;
  leaseMs: number;
  workerId: string;
  buffer: SharedArrayBuffer;
}

/** Messages to the main thread: the lease of `workerId` is gone. */
export interface LeaseLostMessage {
  type: 'lost';
  workerId: string;
}

const data = workerData as LeaseThreadData;
const clock = new LeaseClock(data.buffer);
const redis = createRedis(data.redisUrl, 'lease');
const queues = new Queues(redis, data.prefix, data.partitions);
/** A heartbeat older than staleAfterMs means the main loop is stalled (see docs/design.md, Leases). */
const { renewEveryMs, heldForMs, staleAfterMs } = leaseTiming(data.leaseMs);
let workerId = data.workerId;
let lostId: string | undefined;
let busy = false;

function lost(id: string): void {
  if (lostId === id) return;
  lostId = id;
  clock.set(SLOT.validUntil, 0);
  parentPort!.postMessage({ type: 'lost', workerId: id } satisfies LeaseLostMessage);
}

async function tick(): Promise<void> {
  const id = workerId;
  if (busy || lostId === id) return;
  const now = monotonicMs();
  const alive = now - clock.get(SLOT.heartbeat) <= staleAfterMs || now <= clock.get(SLOT.holdUntil);
  if (!alive) {
    if (now > clock.get(SLOT.validUntil)) lost(id);
    return;
  }
  busy = true;
  try {
    const sentAt = monotonicMs();
    const held = await queues.renewLease(id, heldForMs);
    if (id !== workerId) return;
    if (held) clock.raise(SLOT.validUntil, sentAt + heldForMs);
    else lost(id);
  } catch {
    // Redis away: the lease runs on; once it has surely run out, the runs are lost.
    if (id === workerId && monotonicMs() > clock.get(SLOT.validUntil)) lost(id);
  } finally {
    busy = false;
  }
}

const timer = setInterval(() => void tick(), renewEveryMs);
parentPort!.on('message', (message: { type: 'identity'; workerId: string } | { type: 'stop' }) => {
  if (message.type === 'identity') {
    workerId = message.workerId;
  } else {
    clearInterval(timer);
    redis.disconnect();
    parentPort!.close();
  }
});
void redis.connect().catch(() => undefined);
