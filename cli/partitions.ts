// Every process of a deployment must use the partition count stored in Redis.
import { ConfigError } from './config';
import { log, redactUrl } from '../shared/log';
import { PartitionMismatch, type Queues } from '../shared/store/queues';

/** How long a check that could not be made (Redis away again, or refusing) waits before the next. */
const RETRY_EVERY_MS = 1000;

/** At start, with Redis answering: a mismatch undoes what started and stops the process with one line. */
export async function agreeOrStop(queues: Queues, undo: () => Promise<void>, redisUrl?: string): Promise<void> {
  try {
    await queues.agreeOnPartitions();
    reportPlacement(queues, redisUrl);
  } catch (err) {
    await undo();
    throw err instanceof PartitionMismatch ? new ConfigError(err.message) : err;
  }
}

/**
 * When Redis answers only after the start: checks until the check is made (a check that fails
 * for another reason than a mismatch — Redis gone again, a timeout — is made again a second
 * later, for as long as the connection is open), and stops the process on a mismatch. Called
 * once, on the first `ready`.
 */
export async function agreeOrExit(queues: Queues, redisUrl?: string): Promise<void> {
  for (;;) {
    try {
      await queues.agreeOnPartitions();
      reportPlacement(queues, redisUrl);
      return;
    } catch (err) {
      if (err instanceof PartitionMismatch) {
        log.fatal({ event: 'start_failed', error: err.message }, err.message);
        process.stderr.write(`switchyard: ${err.message}\n`);
        process.exit(2);
      }
      if (queues.redis.status === 'end') return; // the process is stopping
      await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY_MS).unref());
    }
  }
}

/**
 * On a Cluster, where the partitions landed; a warning when some masters hold none while others
 * hold several (a new deployment's tags spread them: placement.ts; a reshard or a failover
 * since may have crowded them), naming the one slot to move, from where to where, and the
 * command that moves it (`switchyard move-slot`, cli/move-slot.ts).
 */
export function reportPlacement(queues: Queues, redisUrl = '<the Cluster URL>'): void {
  const placement = queues.placement();
  if (!placement || queues.partitions === 1) return;
  log.info(
    { event: 'partitions', placement: placement.partitions },
    `partitions on masters: ${placement.partitions.map((p) => `${p.partition}→${p.master}`).join(', ')}`,
  );
  if (placement.idleMasters.length > 0) {
    const shared = placement.partitions.filter((p) => placement.partitions.some((q) => q !== p && q.master === p.master));
    // The last partition on a crowded master is the one to move: that slot alone, with its keys.
    const move = shared[shared.length - 1];
    const to = placement.idleMasters[0];
    log.warn(
      { event: 'partitions_unbalanced', placement: placement.partitions, idleMasters: placement.idleMasters, move: { slot: move.slot, from: move.master, to } },
      `partitions ${shared.map((p) => `${p.partition} (slot ${p.slot})`).join(', ')} share masters while ${placement.idleMasters.join(', ')} hold none: ` +
        `move slot ${move.slot} (partition ${move.partition}) from ${move.master} to ${to}, that slot alone with its keys: ` +
        `switchyard move-slot ${move.slot} --to ${to} --redis ${redactUrl(redisUrl)} (redis-cli --cluster reshard picks slots of its own)`,
    );
  }
}
