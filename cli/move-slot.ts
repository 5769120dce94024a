// `switchyard move-slot <slot> --to <host:port>`: moves one hash slot of a Redis Cluster, with
// its keys, to another master — the step the `partitions_unbalanced` warning names, which
// `redis-cli --cluster reshard` cannot take (it picks the slots it moves). The sequence is
// Redis Cluster's own: CLUSTER SETSLOT IMPORTING on the target, MIGRATING on the source,
// MIGRATE of the slot's keys in batches, then CLUSTER SETSLOT NODE on every master. Meanwhile a
// command for a key already moved is redirected (ASK), and a script over keys on both sides
// answers TRYAGAIN, which the client retries: the deployment keeps running.
import { eachArg } from './args';
import { Cluster, type Redis } from 'ioredis';
import { envName } from './config';
import { redactUrl } from '../shared/log';
import { connectQuietly, createRedis, parseRedisUrl } from '../shared/store/redis';

export const MOVE_SLOT_SUMMARY = 'move-slot <slot> --to <host:port>: moves one Cluster hash slot, with its keys, to another master';

const HELP = [
  'usage: switchyard move-slot <slot> --to <host:port> [--redis URL]',
  '',
  '  <slot>               the hash slot, 0..16383 (the partitions_unbalanced warning and `switchyard stats` name it)',
  '  --to HOST:PORT       the master to move it to, as the Cluster names it (CLUSTER SLOTS, CLUSTER NODES)',
  '  --redis URL          the Cluster, redis+cluster://host:port[,…] (SWITCHYARD_REDIS)',
  '',
  'exit status: 0 moved (or already there), 1 the move failed part way (the message says where), 2 bad arguments or Redis not answering',
].join('\n');

/** Keys moved per MIGRATE. */
const BATCH = 100;
const MIGRATE_TIMEOUT_MS = 10_000;

interface MoveFlags {
  slot: number;
  to: string;
  redis: string;
}

class ArgumentError extends Error {}

function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv): MoveFlags {
  let slot: string | undefined;
  let to: string | undefined;
  let redis = env[envName('redis')] || 'redis://127.0.0.1:6379';
  eachArg(
    argv,
    (name) => new ArgumentError(`${name} needs a value`),
    (name, value) => {
      if (name === '--to') to = value();
      else if (name === '--redis') redis = value();
      else if (!name.startsWith('-') && slot === undefined) slot = name;
      else throw new ArgumentError(`unknown ${name.startsWith('--') ? 'flag' : 'argument'} ${name} (see switchyard move-slot --help)`);
    },
  );
  if (slot === undefined) throw new ArgumentError('which slot? switchyard move-slot <slot> --to <host:port>');
  if (!/^\d{1,5}$/.test(slot) || Number(slot) > 16383) throw new ArgumentError(`the slot must be a whole number from 0 to 16383 (got ${JSON.stringify(slot)})`);
  if (to === undefined) throw new ArgumentError('--to <host:port> is needed: the master to move the slot to');
  if (!/^[^:\s]+:\d{1,5}$/.test(to)) throw new ArgumentError(`--to must be host:port (got ${JSON.stringify(to)})`);
  let kind: string;
  try {
    kind = parseRedisUrl(redis).kind;
  } catch (err) {
    throw new ArgumentError(`--redis must be ${(err as Error).message} (got ${JSON.stringify(redactUrl(redis))})`);
  }
  if (kind !== 'cluster') throw new ArgumentError(`--redis must be a Cluster URL, redis+cluster://host:port[,…] (got ${JSON.stringify(redactUrl(redis))})`);
  return { slot: Number(slot), to, redis };
}

const addressOf = (node: Redis): string => `${node.options.host}:${node.options.port}`;

export async function runMoveSlot(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${MOVE_SLOT_SUMMARY}\n\n${HELP}\n`);
    return;
  }
  let flags: MoveFlags;
  try {
    flags = parseFlags(argv, env);
  } catch (err) {
    process.stderr.write(`switchyard move-slot: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const cluster = createRedis(flags.redis, 'cli');
  let step = 'reading the slot map';
  try {
    if (!(await connectQuietly(cluster, 5000)) || !(cluster instanceof Cluster)) {
      process.stderr.write(`switchyard move-slot: the Cluster at ${redactUrl(flags.redis)} is not answering\n`);
      process.exitCode = 2;
      return;
    }
    const { slot, to } = flags;
    const ranges = (await cluster.cluster('SLOTS')) as unknown as Array<[number, number, [string, number, string?]]>;
    const range = ranges.find(([from, last]) => slot >= from && slot <= last);
    if (!range) throw new Error(`no master serves slot ${slot}`);
    const from = `${range[2][0]}:${range[2][1]}`;
    if (from === to) {
      process.stdout.write(`slot ${slot} is on ${to} already\n`);
      return;
    }
    const masters = cluster.nodes('master');
    const source = masters.find((n) => addressOf(n) === from);
    const target = masters.find((n) => addressOf(n) === to);
    if (!target) throw new Error(`${to} is not a master of this Cluster (its masters: ${masters.map(addressOf).sort().join(', ')})`);
    if (!source) throw new Error(`the master of slot ${slot}, ${from}, is not among the connected masters`);
    const [sourceId, targetId] = await Promise.all([source.cluster('MYID'), target.cluster('MYID')]);
    step = `marking slot ${slot} importing on ${to}`;
    await target.cluster('SETSLOT', slot, 'IMPORTING', String(sourceId));
    step = `marking slot ${slot} migrating on ${from}`;
    await source.cluster('SETSLOT', slot, 'MIGRATING', String(targetId));
    step = `moving the keys of slot ${slot} from ${from} to ${to}`;
    const [host, port] = [to.slice(0, to.lastIndexOf(':')), to.slice(to.lastIndexOf(':') + 1)];
    const auth = source.options.password
      ? source.options.username
        ? ['AUTH2', source.options.username, source.options.password]
        : ['AUTH', source.options.password]
      : [];
    let moved = 0;
    for (;;) {
      const keys = (await source.cluster('GETKEYSINSLOT', slot, BATCH)) as string[];
      if (keys.length === 0) break;
      await source.call('MIGRATE', host, port, '', 0, MIGRATE_TIMEOUT_MS, ...auth, 'KEYS', ...keys);
      moved += keys.length;
    }
    step = `giving slot ${slot} to ${to}`;
    // The target first, then the source (which stops redirecting with ASK), then every other master.
    for (const node of [target, source, ...masters.filter((n) => n !== target && n !== source)]) await node.cluster('SETSLOT', slot, 'NODE', String(targetId));
    process.stdout.write(`slot ${slot} moved from ${from} to ${to}: ${moved} key(s)\n`);
  } catch (err) {
    process.stderr.write(
      `switchyard move-slot: failed ${step}: ${(err as Error).message.split('\n')[0]}` +
        (step.startsWith('reading') ? '\n' : ` (run it again to finish the move, or redis-cli --cluster fix to undo what was started)\n`),
    );
    process.exitCode = 1;
  } finally {
    cluster.disconnect();
  }
}
