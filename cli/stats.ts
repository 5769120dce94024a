// `switchyard stats`: queue depths, level-2 state, in flight, idle workers, dead, counters.
import type { Config } from './config';
import { redactUrl } from '../shared/log';
import { Queues } from '../shared/store/queues';
import { connectQuietly, createRedis } from '../shared/store/redis';
import type { QueueStats } from '../shared/store/views';
import { readDeploymentGroups, summarizeGroups, type GroupsSummary } from '../shared/ops/groups';
import { formatGroups } from './group';

export function formatStats(
  s: QueueStats,
  prefix: string,
  partitions: Array<QueueStats & { unavailable?: string }> = [],
  masters: string[] = [],
  tags: string[] = [],
  groups?: GroupsSummary,
): string {
  const tagOf = (p: number): string => tags[p] ?? `{${prefix}:${p}}`;
  const lines = [`switchyard stats  {${prefix}}${partitions.length > 1 ? `  ${partitions.length} partitions` : ''}  ${new Date().toISOString()}`, ''];
  lines.push('queue            waiting');
  for (const [name, depth] of Object.entries(s.queues)) lines.push(`  ${name.padEnd(14)} ${String(depth).padStart(7)}`);
  lines.push('');
  const grouped = s.grouped && s.grouped.L1 + s.grouped.L2 > 0 ? `   (in named groups: L1 ${s.grouped.L1}   L2 ${s.grouped.L2})` : '';
  lines.push(`backlog          L1 ${s.backlog.L1}   L2 ${s.backlog.L2}${grouped}`);
  lines.push(`level 2          ${s.level2Active ? 'active' : 'INACTIVE (refusing)'}`);
  const paused = ([1, 2] as const).filter((l) => s.paused?.[l]);
  if (paused.length > 0) lines.push(`paused           ${paused.map((l) => `level ${l}`).join(', ')} (accepting calls, not claimed)`);
  lines.push(`in flight        ${s.inFlight} on ${s.workers} worker(s), ${s.idle} idle`);
  lines.push(`retries waiting  ${s.delayed}`);
  lines.push(`dead             ${s.dead}`);
  const down = partitions.filter((p) => p.unavailable !== undefined).length;
  if (down > 0) lines.push(`NOT ANSWERING    ${down} of ${partitions.length} partitions: the figures above are the others'`);
  if (partitions.length > 1) {
    lines.push('', `partition        L1 waiting  L2 waiting  level 2   in flight  retries  dead${masters.length ? '  master' : ''}`);
    partitions.forEach((p, i) => {
      if (p.unavailable !== undefined) {
        lines.push(`  ${tagOf(i)}`.padEnd(17) + `NOT ANSWERING (${p.unavailable})${masters[i] ? `  ${masters[i]}` : ''}`);
        return;
      }
      const cells = [p.backlog.L1, p.backlog.L2].map((n) => String(n).padStart(10));
      lines.push(
        `  ${tagOf(i)}`.padEnd(17) +
          `${cells[0]}  ${cells[1]}  ${(p.level2Active ? 'active' : 'REFUSING').padEnd(8)}  ${String(p.inFlight).padStart(9)}  ${String(p.delayed).padStart(7)}  ${String(p.dead).padStart(4)}${masters[i] ? `  ${masters[i]}` : ''}`,
      );
    });
  }
  if (groups) lines.push('', ...formatGroups(groups));
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
  const queues = await Queues.open(redis, config.prefix, config.given.has('partitions') ? config.partitions : undefined);
  const show = async (): Promise<void> => {
    const [{ total, partitions }, groups] = await Promise.all([queues.stats(), readDeploymentGroups(queues).then((g) => summarizeGroups(g))]);
    const masters = queues.placement()?.partitions.map((p) => p.master) ?? [];
    // Each partition with its hash tag (and on a Cluster its master): where its keys are.
    const placed = partitions.map((p, i) => ({ ...p, tag: queues.tags[i], ...(masters[i] && { master: masters[i] }) }));
    const json = partitions.length > 1 ? { ...total, groups, partitions: placed } : { ...total, groups };
    const text = config.json ? JSON.stringify(json) : formatStats(total, config.prefix, partitions, masters, queues.tags, groups);
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
