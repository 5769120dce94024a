// `switchyard dead [list] | requeue <id>|all | delete <id> | purge`: read and act on the dead-letter list.
import { ConfigError, type Config } from './config';
import { redactUrl } from '../shared/log';
import { connectQuietly, createRedis } from '../shared/store/redis';
import { readDeadEntry } from '../shared/store/format/dead-entry';
import { Queues } from '../shared/store/queues';

const ACTIONS = 'list, requeue <id>|all, delete <id>, purge';

export async function runDead(config: Config): Promise<void> {
  const [action = 'list', target] = config.args;
  if (!['list', 'requeue', 'delete', 'purge'].includes(action)) throw new ConfigError(`unknown action "${action}" (${ACTIONS})`);
  if (action === 'requeue' && !target) throw new ConfigError('requeue needs a job id, or "all"');
  if (action === 'delete' && !target) throw new ConfigError('delete needs a job id (purge empties the whole list)');
  const redis = createRedis(config.redis, 'cli');
  if (!(await connectQuietly(redis))) throw new Error(`redis at ${redactUrl(config.redis)} is not answering`);
  const queues = await Queues.open(redis, config.prefix, config.given.has('partitions') ? config.partitions : undefined);
  try {
    if (action === 'list') {
      const entries = await queues.listDead(config.limit);
      if (config.json) {
        process.stdout.write(`[${entries.join(',')}]\n`);
      } else if (entries.length === 0) {
        process.stdout.write('no dead jobs\n');
      } else {
        for (const text of entries) process.stdout.write(describeEntry(text) + '\n');
      }
    } else if (action === 'requeue' && target === 'all') {
      process.stdout.write(`${await queues.requeueAllDead()} job(s) requeued\n`);
    } else if (action === 'requeue') {
      const outcome = await queues.requeueDead(target);
      if (outcome === 'requeued') process.stdout.write(`job ${target} requeued\n`);
      else {
        process.stderr.write(
          outcome === 'unknown' ? `no dead job has id ${target}\n` : `job ${target} not requeued: a newer message for its key was accepted since\n`,
        );
        process.exitCode = 1;
      }
    } else if (action === 'delete') {
      if ((await queues.deleteDead(target)) === 'deleted') process.stdout.write(`dead job ${target} deleted\n`);
      else {
        process.stderr.write(`no dead job has id ${target}\n`);
        process.exitCode = 1;
      }
    } else {
      process.stdout.write(`${await queues.purgeDead()} dead job(s) purged\n`);
    }
  } finally {
    redis.disconnect();
  }
}

/** One line per dead job; an entry that is not of the usual form is shown as it is. */
function describeEntry(text: string): string {
  const e = readDeadEntry(text);
  if (!e) return text.slice(0, 200);
  return `${e.id}  L${e.level} ${e.method} ${e.url}  attempts=${e.attempts} status=${e.status ?? '-'}  ${new Date(e.failedAt).toISOString()}  ${e.error.slice(0, 120)}`;
}
