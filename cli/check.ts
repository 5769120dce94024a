// `switchyard check`: verifies every invariant of a deployment's stored state (the work is
// shared/store/check/index.ts's); prints one line per problem and a summary, or JSON; exit 1 when a
// problem is left, 0 when the state is clean (or every problem found was repaired).
import { deploymentFlagsFrom, eachArg, takeDeploymentFlag } from './args';
import { parseDuration } from './config';
import { redactUrl } from '../shared/log';
import { checkDeployment, formatReport } from '../shared/store/check';
import { deploymentKeys } from '../shared/store/keys';
import { storedCount } from '../shared/store/placement';
import { Queues } from '../shared/store/queues';
import { connectQuietly, createRedis, parseRedisUrl } from '../shared/store/redis';

export const CHECK_SUMMARY = 'verifies every invariant of the stored state (index, held keys, newest marks, payloads, counters, partitions)';

interface CheckFlags {
  redis: string;
  prefix: string;
  partitions?: number;
  json: boolean;
  repair: boolean;
  graceMs: number;
}

const HELP = [
  'usage: switchyard check [flags]',
  '',
  'flags (the first three also read from SWITCHYARD_<FLAG>; the flag wins):',
  '  --redis URL          Redis URL, as for every command [default: redis://127.0.0.1:6379] (SWITCHYARD_REDIS)',
  '  --prefix P           key prefix [default: sy] (SWITCHYARD_PREFIX)',
  '  --partitions N       partitions to check [default: the count stored in Redis] (SWITCHYARD_PARTITIONS)',
  '  --json               print {ok, problems, repaired, counts} as JSON',
  '  --repair             repair what is safe to repair (each repair re-checks its condition first); report the rest',
  '  --recovery-grace D   a worker whose lease ran out longer ago than this with runs left is a problem (recovery is overdue) [default: 32s]',
  '',
  'exit status: 0 no problem left, 1 problems, 2 bad flags or Redis not answering',
].join('\n');

class FlagError extends Error {}

function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv): CheckFlags {
  const fail = (message: string): Error => new FlagError(message);
  const flags: CheckFlags = { ...deploymentFlagsFrom(env, fail), json: false, repair: false, graceMs: 32_000 };
  eachArg(
    argv,
    (name) => new FlagError(`${name} needs a value`),
    (name, value) => {
      if (takeDeploymentFlag(flags, name, value, fail)) return;
      if (name === '--json') flags.json = true;
      else if (name === '--repair') flags.repair = true;
      else if (name === '--recovery-grace') {
        const raw = value();
        try {
          flags.graceMs = parseDuration(raw);
        } catch (err) {
          throw new FlagError(`--recovery-grace must be ${(err as Error).message} (got ${JSON.stringify(raw)})`);
        }
      } else throw new FlagError(`unknown ${name.startsWith('--') ? 'flag' : 'argument'} ${name} (see switchyard check --help)`);
    },
  );
  try {
    parseRedisUrl(flags.redis);
  } catch (err) {
    throw new FlagError(`--redis must be ${(err as Error).message} (got ${JSON.stringify(redactUrl(flags.redis))})`);
  }
  if (!/^[A-Za-z0-9_.:-]+$/.test(flags.prefix)) throw new FlagError(`--prefix may hold only letters, digits and _ . : - (got ${JSON.stringify(flags.prefix)})`);
  return flags;
}

export async function runCheck(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${CHECK_SUMMARY}\n\n${HELP}\n`);
    return;
  }
  let flags: CheckFlags;
  try {
    flags = parseFlags(argv, env);
  } catch (err) {
    process.stderr.write(`switchyard check: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const redis = createRedis(flags.redis, 'cli');
  try {
    if (!(await connectQuietly(redis))) throw new Error(`redis at ${redactUrl(flags.redis)} is not answering`);
    // Not Queues.open: a count given here that disagrees with the stored one is a problem to report, not a reason to stop.
    // An unreadable stored value is reported by the check itself (PARTITION_MISMATCH).
    const stored = await redis.get(deploymentKeys(flags.prefix).partitions);
    const queues = new Queues(redis, flags.prefix, flags.partitions ?? storedCount(stored, flags.prefix) ?? 1);
    const report = await checkDeployment(queues, { repair: flags.repair, recoveryGraceMs: flags.graceMs });
    process.stdout.write((flags.json ? JSON.stringify(report) : formatReport(report, queues)) + '\n');
    process.exitCode = report.ok ? 0 : 1;
  } catch (err) {
    process.stderr.write(`switchyard check: ${(err as Error).message.split('\n')[0]}\n`);
    process.exitCode = 2;
  } finally {
    redis.disconnect();
  }
}
