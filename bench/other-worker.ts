// A BullMQ or bee-queue worker process for the comparison: a no-op processor, concurrency 50,
// and the same wake-up recording as bench-app.ts. Usage: other-worker.js bullmq|bee QUEUE REDIS_URL
import Redis from 'ioredis';
import { machineClockMs } from './clock';

const [kind, queueName, url] = process.argv.slice(2);
const { hostname: host, port } = new URL(url);
const connection = { host, port: Number(port) };
const record = new Redis(url);
const CONCURRENCY = 50;

function recordWake(data: { sentAt?: number }): void {
  if (data.sentAt !== undefined) void record.rpush('bench:wake', String(machineClockMs() - data.sentAt));
}

async function main(): Promise<void> {
  if (kind === 'bullmq') {
    const { Worker } = await import('bullmq');
    const worker = new Worker(queueName, async (job) => recordWake(job.data), { connection, concurrency: CONCURRENCY, removeOnComplete: { count: 0 } });
    await worker.waitUntilReady();
  } else {
    const BeeQueue = (await import('bee-queue')).default;
    const queue = new BeeQueue(queueName, { redis: connection, removeOnSuccess: true, storeJobs: false, activateDelayedJobs: false });
    queue.process(CONCURRENCY, async (job: { data: { sentAt?: number } }) => recordWake(job.data));
    await queue.ready();
  }
  process.stdout.write(`${kind} worker ready\n`);
}

void main();
