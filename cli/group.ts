// `switchyard group <name> [--concurrency N|off|default] [--rate R|off|default]`: sets a tenant
// group's run-time limits in {p}:groups:limits (every partition), or with no limit flag shows the
// group; `switchyard group --list` (or `switchyard groups`) lists the active groups. The Redis
// side is shared/ops/groups.ts (the dashboard uses it too).
import { deploymentFlagsFrom, eachArg, takeDeploymentFlag, wholeNumber } from './args';
import { redactUrl } from '../shared/log';
import {
  checkGroupName,
  describeLimits,
  GROUPS_READ_MAX,
  GROUPS_TOP_DEFAULT,
  parseConcurrencyChange,
  parseRateChange,
  readDeploymentGroups,
  readGroup,
  setGroupLimits,
  summarizeGroups,
  type GroupsSummary,
  type LimitsChange,
} from '../shared/ops/groups';
import { Queues } from '../shared/store/queues';
import { connectQuietly, createRedis, parseRedisUrl } from '../shared/store/redis';

export const GROUP_SUMMARY = 'group <name>: a tenant group’s limits, runs and backlog; --concurrency / --rate set them; --list the active groups';
export const GROUPS_SUMMARY = 'the active tenant groups, largest backlog first (same as group --list)';

interface GroupFlags {
  redis: string;
  prefix: string;
  partitions?: number;
  json: boolean;
  list: boolean;
  top: number;
  name?: string;
  change: LimitsChange;
}

const HELP = [
  'usage: switchyard group <name> [--concurrency N|off|default] [--rate R|off|default] [flags]',
  '       switchyard group --list [--top N]      (or: switchyard groups)',
  '',
  'With no limit flag: the group’s limits, its runs now and its backlog per level.',
  '  --concurrency N      at most N runs of the group at once (all workers); off: no cap; default: the workers’ --group-concurrency',
  '  --rate R             at most R runs started per second: 100/s, 30/m, 5/h; off: no limit; default: the workers’ --group-rate',
  '  --list               the active groups (something in line or running), largest backlog first',
  `  --top N              groups listed one by one, the rest summed as one line [default: ${GROUPS_TOP_DEFAULT}]`,
  '  --json               print JSON',
  '  --redis URL          Redis URL [default: redis://127.0.0.1:6379] (SWITCHYARD_REDIS)',
  '  --prefix P           key prefix [default: sy] (SWITCHYARD_PREFIX)',
  '  --partitions N       partitions [default: the count stored in Redis] (SWITCHYARD_PARTITIONS)',
  '',
  'exit status: 0 done, 2 bad flags or Redis not answering',
].join('\n');

class FlagError extends Error {}

/** A limit flag's value (shared/ops/groups.ts reads it), or the flag and the reason. */
function limitOf(flag: string, raw: string, parse: (text: string) => number | null): number | null {
  try {
    return parse(raw);
  } catch (err) {
    throw new FlagError(`${flag}: ${(err as Error).message}`);
  }
}

export function parseGroupFlags(argv: readonly string[], env: NodeJS.ProcessEnv, list = false): GroupFlags {
  const fail = (message: string): Error => new FlagError(message);
  const flags: GroupFlags = { ...deploymentFlagsFrom(env, fail), json: false, list, top: GROUPS_TOP_DEFAULT, change: {} };
  eachArg(
    argv,
    (name) => new FlagError(`${name} needs a value`),
    (name, value) => {
      if (takeDeploymentFlag(flags, name, value, fail)) return;
      if (name === '--json') flags.json = true;
      else if (name === '--list') flags.list = true;
      else if (name === '--top') flags.top = wholeNumber(value(), '--top', 1, GROUPS_READ_MAX, fail);
      else if (name === '--concurrency') flags.change.concurrency = limitOf(name, value(), parseConcurrencyChange);
      else if (name === '--rate') flags.change.rate = limitOf(name, value(), parseRateChange);
      else if (name.startsWith('-')) throw new FlagError(`unknown flag ${name} (see switchyard group --help)`);
      else if (flags.name === undefined) flags.name = name;
      else throw new FlagError(`one group at a time (got ${JSON.stringify(flags.name)} and ${JSON.stringify(name)})`);
    },
  );
  const changes = flags.change.concurrency !== undefined || flags.change.rate !== undefined;
  if (flags.list && (flags.name !== undefined || changes)) throw new FlagError('--list takes no group name and no limit flag');
  if (!flags.list && flags.name === undefined) throw new FlagError('needs a group name (or --list)');
  if (flags.name !== undefined) {
    try {
      checkGroupName(flags.name);
    } catch (err) {
      throw new FlagError((err as Error).message);
    }
  }
  try {
    parseRedisUrl(flags.redis);
  } catch (err) {
    throw new FlagError(`--redis must be ${(err as Error).message} (got ${JSON.stringify(redactUrl(flags.redis))})`);
  }
  if (!/^[A-Za-z0-9_.:-]+$/.test(flags.prefix)) throw new FlagError(`--prefix may hold only letters, digits and _ . : - (got ${JSON.stringify(flags.prefix)})`);
  return flags;
}

const backlogText = (b: { 1: number; 2: number }): string => `L1 ${b[1]}  L2 ${b[2]}`;

/** The groups table of `stats`, `queue` and `group --list`: one line per group, the rest as one line. */
export function formatGroups(s: GroupsSummary, title = 'groups'): string[] {
  if (s.active === 0 && s.top.length === 0) return [`${title}: none active`];
  const shown = s.top.length + (s.other?.groups ?? 0);
  const lines = [`${title}: ${s.active} active${s.unread > 0 ? `, ${shown} read (TRUNCATED: at most ${GROUPS_READ_MAX} per partition are read)` : ''}`];
  lines.push('  group                         L1 waiting  L2 waiting  running  limited');
  const row = (name: string, b: { 1: number; 2: number }, running: number, limited: string): string =>
    `  ${name.padEnd(28)} ${String(b[1]).padStart(11)} ${String(b[2]).padStart(11)} ${String(running).padStart(8)}  ${limited}`;
  for (const g of s.top) lines.push(row(g.name, g.backlog, g.running, g.limited ? `${g.limited}${g.dueInMs ? ` (${g.dueInMs} ms)` : ''}` : '-'));
  if (s.other) lines.push(row(`(${s.other.groups} other groups)`, s.other.backlog, s.other.running, s.other.limited > 0 ? `${s.other.limited} limited` : '-'));
  if (s.unavailablePartitions) lines.push(`  NOT ANSWERING: partition(s) ${s.unavailablePartitions.join(', ')}: the figures above are the others'`);
  return lines;
}

export async function runGroup(argv: readonly string[], list = false, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${list ? GROUPS_SUMMARY : GROUP_SUMMARY}\n\n${HELP}\n`);
    return;
  }
  let flags: GroupFlags;
  try {
    flags = parseGroupFlags(argv, env, list);
  } catch (err) {
    process.stderr.write(`switchyard group: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const redis = createRedis(flags.redis, 'cli');
  try {
    if (!(await connectQuietly(redis))) throw new Error(`redis at ${redactUrl(flags.redis)} is not answering`);
    const queues = await Queues.open(redis, flags.prefix, flags.partitions);
    const write = (json: unknown, text: string): void => void process.stdout.write((flags.json ? JSON.stringify(json) : text) + '\n');
    if (flags.list) {
      const summary = summarizeGroups(await readDeploymentGroups(queues), flags.top);
      write(summary, formatGroups(summary).join('\n'));
      return;
    }
    const name = flags.name!;
    if (flags.change.concurrency !== undefined || flags.change.rate !== undefined) {
      const limits = await setGroupLimits(queues, name, flags.change);
      write({ group: name, limits }, `group ${name}: ${describeLimits(limits)}`);
      return;
    }
    const g = await readGroup(queues, name);
    write(
      g,
      [
        `group ${name}`,
        `  limits     ${describeLimits(g.limits)}`,
        `  running    ${g.running}`,
        `  waiting    ${backlogText(g.backlog)}`,
        `  limited    ${g.limited ? `${g.limited}${g.dueInMs ? `, next run in ${g.dueInMs} ms` : ''}` : 'no'}`,
      ].join('\n'),
    );
  } catch (err) {
    process.stderr.write(`switchyard group: ${(err as Error).message.split('\n')[0]}\n`);
    process.exitCode = 2;
  } finally {
    redis.disconnect();
  }
}
