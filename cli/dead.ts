// `switchyard dead [list] | requeue <id>|all | purge`: read and act on the dead-letter list.
import type { Config } from '../shared/ops/config';
import { connectQuietly, createRedis } from '../shared/store/redis';
import { Store } from '../shared/store/store';
import { ConfigError } from '../shared/ops/config';
import { redactUrl } from './gateway';

export async function runDead(config: Config): Promise<void> {
  const [action = 'list', target] = config.args;
  if (!['list', 'requeue', 'purge'].includes(action)) throw new ConfigError(`dead: unknown action "${action}" (list, requeue <id>|all, purge)`);
  if (action === 'requeue' && !target) throw new ConfigError('dead requeue needs a job id, or "all"');
  const redis = createRedis(config.redis, 'cli');
  if (!(await connectQuietly(redis))) throw new Error(`redis at ${redactUrl(config.redis)} is not answering`);
  const store = new Store(redis, config.prefix);
  try {
    if (action === 'list') {
      const entries = await store.listDead(config.limit);
      if (config.json) {
        process.stdout.write(`[${entries.join(',')}]\n`);
      } else if (entries.length === 0) {
        process.stdout.write('no dead jobs\n');
      } else {
        for (const text of entries) {
          const e = JSON.parse(text) as { failedAt: number; attempts: number; status: string | null; error: string; job: { id: string; level: number; method: string; url: string } };
          process.stdout.write(`${e.job.id}  L${e.job.level} ${e.job.method} ${e.job.url}  attempts=${e.attempts} status=${e.status ?? '-'}  ${new Date(e.failedAt).toISOString()}  ${e.error.slice(0, 120)}\n`);
        }
      }
    } else if (action === 'requeue') {
      const moved = await store.requeueDead(target === 'all' ? '*' : target);
      process.stdout.write(`${moved} job(s) requeued\n`);
      if (moved === 0 && target !== 'all') process.exitCode = 1;
    } else {
      process.stdout.write(`${await store.purgeDead()} dead job(s) purged\n`);
    }
  } finally {
    redis.disconnect();
  }
}
