// `switchyard stats`: queue depths, level-2 state, in flight, idle workers, dead, counters.
import type { Config } from '../shared/ops/config';
import { connectQuietly, createRedis } from '../shared/store/redis';
import { Store, type QueueStats } from '../shared/store/store';
import { redactUrl } from '../shared/ops/log';

export function formatStats(s: QueueStats, prefix: string): string {
  const lines = [`switchyard stats  {${prefix}}  ${new Date().toISOString()}`, ''];
  lines.push('queue            waiting');
  for (const [name, depth] of Object.entries(s.queues)) lines.push(`  ${name.padEnd(14)} ${String(depth).padStart(7)}`);
  lines.push('');
  lines.push(`backlog          L1 ${s.backlog.L1}   L2 ${s.backlog.L2}`);
  lines.push(`level 2          ${s.level2Active ? 'active' : 'INACTIVE (refusing)'}`);
  lines.push(`in flight        ${s.inFlight} on ${s.workers} worker(s), ${s.idle} idle`);
  lines.push(`retries waiting  ${s.delayed}`);
  lines.push(`dead             ${s.dead}`);
  const counters = Object.entries(s.counters).sort(([a], [b]) => a.localeCompare(b));
  if (counters.length > 0) {
    lines.push('', 'counters');
    for (const [name, value] of counters) lines.push(`  ${name.padEnd(16)} ${value}`);
  }
  return lines.join('\n');
}

export async function runStats(config: Config): Promise<void> {
  const redis = createRedis(config.redis, 'cli');
  if (!(await connectQuietly(redis))) throw new Error(`redis at ${redactUrl(config.redis)} is not answering`);
  const store = new Store(redis, config.prefix);
  const show = async (): Promise<void> => {
    const stats = await store.stats();
    const text = config.json ? JSON.stringify(stats) : formatStats(stats, config.prefix);
    process.stdout.write((config.watchMs && !config.json ? '\x1b[2J\x1b[H' : '') + text + '\n');
  };
  await show();
  if (!config.watchMs) {
    redis.disconnect();
    return;
  }
  // A failed refresh (Redis away for a moment) says why and the next one tries again.
  const timer = setInterval(() => void show().catch((err: Error) => process.stderr.write(`switchyard stats: ${err.message}\n`)), config.watchMs);
  await new Promise<void>((resolve) => process.once('SIGINT', resolve));
  clearInterval(timer);
  redis.disconnect();
}
