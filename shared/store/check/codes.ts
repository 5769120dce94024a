// Every problem `switchyard check` reports: a stable code, what it means, and what --repair
// does about it (or, for what cannot be repaired safely, what the operator can do).
// docs/design.md ("Invariants the checker verifies") lists the same codes.

export const PROBLEMS = {
  INDEX_MISSING: {
    means:
      'a job sits in a `last` hash, a worker hash, the delayed set or the dead list, and the lookup index has no entry for it (a message waiting in a list needs none)',
    repair: 'adds the entry saying where the job is',
  },
  INDEX_WRONG: {
    means: 'the index entry of a job points somewhere the job is not, while the job is elsewhere',
    repair: 'rewrites the entry to where the job is',
  },
  INDEX_DANGLING: {
    means: 'an index entry points to a job that is not there (nor anywhere else), or is of no known form',
    repair: 'drops the entry',
  },
  JOB_IN_TWO_PLACES: {
    means: 'one job id is in two places at once (it could run twice)',
    advice: 'look at both copies (switchyard job <id>, redis-cli) and remove the one that must not run',
  },
  DONE_UNINDEXED: {
    means: 'a finished job kept for lookup ({p}:done) has no "done" index entry',
    repair: 'removes it from {p}:done',
  },
  PAYLOAD_UNREADABLE: {
    means: 'a payload outside the dead list is not JSON, or has no routing prefix the scripts can read',
    advice: 'copy it out with redis-cli and remove it from where it sits; the scripts bury such a payload in the dead list when they meet it',
  },
  PAYLOAD_MISPLACED: {
    means: "a payload's level, policy or key disagrees with the queue it sits in (a level's, or a group's)",
    advice: 'move it by hand (redis-cli) to the queue its routing fields name, or remove it',
  },
  DEAD_ENTRY_MALFORMED: {
    means: 'a dead-letter entry is not {"failedAt":N,"attempts":N,"status":…,"error":"…","job":<payload>}',
    advice: 'read it with switchyard dead list --json and remove it with redis-cli LREM',
  },
  HELD_KEY_ORPHANED: {
    means: 'a `last` key is marked running ({p}:running) but no worker hash holds that run (or the run is of another key): the key would never run again',
    repair: 'releases the key (no worker holds the run) and puts its waiting message in line',
    advice: 'the token belongs to a live run of another key (or an unreadable one): when that run ends the field stays; HDEL it by hand then',
  },
  RUN_KEY_NOT_HELD: {
    means: 'a worker runs a `last` message but {p}:running does not hold its key for that run: another run of the key can start beside it',
    advice: 'let the run end (or its worker be recovered), then check again',
  },
  WORKER_GONE_WITH_RUNS: {
    means: 'a worker hash or inbox holds runs of a worker that is not registered, or whose lease ran out longer ago than recovery takes',
    repair: 'registers the worker with a lease that ran out long ago, so the next recovery pass (of any worker) hands its runs back',
    advice: 'recovery is overdue: start a worker (every worker recovers the runs of workers whose lease ran out)',
  },
  INBOX_ORPHANED: {
    means: "a job handed to an idle worker's inbox is not in that worker's hash",
    advice: 'the job would run without a record: remove the inbox entry with redis-cli once its worker is gone',
  },
  LAST_NOT_IN_LINE: {
    means:
      'a waiting `last` message (of a level, or of a group: {p}:L<n>:g:<group>:last) is neither in its order list nor parked behind a run of its key: it would never run',
    repair: "puts its key at the front of the line (a group's key: and the group in its ring)",
  },
  LAST_IN_LINE_TWICE: {
    means: 'a key is in a `last` order list more than once',
    repair: 'keeps the copy nearest the front of the line, removes the others',
  },
  ORDER_WITHOUT_PAYLOAD: {
    means: 'a key is in a `last` order list with no waiting message and no run',
    repair: 'removes the key from the line',
  },
  NEWEST_MISMATCH: {
    means: "a waiting `last` message is not its key's newest accepted message ({p}:L<n>:last:newest, or its group's {p}:L<n>:g:<group>:last:newest)",
    advice: 'an older message waits while a newer one was accepted: look at both with switchyard job <id> and delete the older one',
  },
  NEWEST_DANGLING: {
    means: "a key's newest mark points to a message that is not waiting, running, delayed or dead with that key (and group)",
    repair: 'drops the mark',
  },
  COUNTER_INVALID: {
    means: 'a counter of {p}:stats is not a non-negative whole number',
    advice: 'set it right with redis-cli HSET (counters only report; nothing decides on them except L<n>:delayed)',
  },
  COUNTER_MISMATCH: {
    means: '{p}:stats L1:delayed / L2:delayed differ from the messages of that level in {p}:delayed',
    repair: 'recounts them from {p}:delayed',
  },
  TOKEN_BEHIND: {
    means: '{p}:runs is below a run token in use: the next run could get a token already given (fencing would accept stale writes)',
    repair: 'raises {p}:runs to the largest token in use',
  },
  TOKEN_INVALID: {
    means: 'a worker hash has a field that is not a run token (a whole number)',
    advice: 'remove the field with redis-cli HDEL once its worker is gone',
  },
  GROUP_NOT_IN_RING: {
    means: "a named group has messages in line in a level ({p}:L<n>:g:<group>:…) but is not in that level's ring ({p}:L<n>:groups): no claim would serve it",
    repair: 'puts it in the ring, at the back (its turn stamp: Redis time now)',
  },
  GROUP_RUNNING_MISMATCH: {
    means: "{p}:groups:running differs from the group's runs in worker hashes: its cap would let too many or too few run",
    repair: "sets the count to the group's runs in worker hashes (deletes the field at 0)",
  },
  GROUPED_MISMATCH: {
    means: '{p}:stats L<n>:grouped differs from the grouped messages waiting in level n (the level-2 switch and discard read it)',
    repair: "recounts it from the groups' queues",
  },
  GROUP_PAYLOAD_MISPLACED: {
    means: "a payload in a group's queue names another group (or none); or a payload in a level's own queue names a group",
    advice: 'move it by hand (redis-cli) to the queue its routing fields name, or remove it',
  },
  PARTITION_MISMATCH: {
    means: '{prefix}:partitions disagrees with the partition count checked (or is missing with several partitions)',
    advice: 'give every process the stored --partitions; to change it, drain the queues first',
  },
  PARTITION_STRAY_KEYS: {
    means: 'queue keys exist under a hash tag the deployment does not use (a partition >= N, or the plain tag with several partitions): nothing reads them',
    advice: 'start a deployment with the partition count that wrote them and drain them, or delete them',
  },
} as const satisfies Record<string, { means: string; repair?: string; advice?: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

/** What --repair does about a problem of this code, or (not repairable, or not this time) the advice. */
export function remedyOf(code: ProblemCode, repairable: boolean): string {
  const entry: { repair?: string; advice?: string } = PROBLEMS[code];
  return repairable && entry.repair ? `--repair ${entry.repair}` : entry.advice!;
}
