// Every process of a deployment must use the partition count stored in Redis.
import { ConfigError } from '../shared/ops/config';
import { log } from '../shared/ops/log';
import { PartitionMismatch, type Queues } from '../shared/store/queues';

/** At start, with Redis answering: a mismatch undoes what started and stops the process with one line. */
export async function agreeOrStop(queues: Queues, undo: () => Promise<void>): Promise<void> {
  try {
    await queues.agreeOnPartitions();
  } catch (err) {
    await undo();
    throw err instanceof PartitionMismatch ? new ConfigError(err.message) : err;
  }
}

/** When Redis answers only after the start: a mismatch stops the process then. */
export async function agreeOrExit(queues: Queues): Promise<void> {
  try {
    await queues.agreeOnPartitions();
  } catch (err) {
    if (!(err instanceof PartitionMismatch)) return; // Redis went away again: checked on the next connection
    log.fatal({ event: 'start_failed', error: err.message }, err.message);
    process.stderr.write(`switchyard: ${err.message}\n`);
    process.exit(2);
  }
}
