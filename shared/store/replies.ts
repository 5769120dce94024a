// The codes the scripts answer with, by name, in one place. A script writes `CODE.<name>` and the
// loader (scripts/index.ts) puts the number in; the store decodes a reply with `replyOf`, so a number
// means the same thing in the Lua that returns it and in the TypeScript that reads it.
export const REPLY_CODES = {
  enqueue: {
    queued: 1,
    /** A waiting `last` message with that key was overwritten (it keeps its key's place). */
    replaced: 2,
    /** Level 2 is refusing (the 80/60 switch is off). */
    refused: 3,
    /** `discard` under load. */
    dropped: 4,
    /** Queued, and an idle worker waits on the deployment's wake keys (several partitions): wake one. */
    queuedWakeIdle: 5,
    /** A job with the caller's id is known: nothing queued. */
    duplicate: 6,
  },
  renewLease: { lost: -1 },
  claimJobs: { lost: -1 },
  finishJobs: { lost: -1 },
  failJob: {
    lost: -1,
    /** The run is no longer this worker's (handed back already). */
    gone: 0,
    retry: 1,
    dead: 2,
    /** The retry was dropped: a newer message for its `last` key was accepted. */
    superseded: 3,
  },
  requeueDead: { unknown: 0, requeued: 1, superseded: 2 },
  deleteDead: { unknown: 0, deleted: 1 },
  deleteJob: {
    unknown: 0,
    deleted: 1,
    running: 2,
    dead: 3,
    finished: 4,
    /** The index named a place that no longer held the job: the entry was dropped. */
    notWhereIndexed: 5,
    /** No index entry, and not among the waiting messages read (the lists hold more): it may wait further back. */
    notWithinScan: 6,
  },
} as const;

export type CodedScript = keyof typeof REPLY_CODES;
export type ReplyOf<S extends CodedScript> = keyof (typeof REPLY_CODES)[S];

const NAMES = new Map<string, Map<number, string>>(
  Object.entries(REPLY_CODES).map(([script, codes]) => [script, new Map(Object.entries(codes).map(([name, code]) => [code as number, name]))]),
);

/** The name of a script's reply code; an unknown code is a bug between the two sides, so it throws. */
export function replyOf<S extends CodedScript>(script: S, code: number): ReplyOf<S> {
  const name = NAMES.get(script)!.get(code);
  if (name === undefined) throw new Error(`script ${script} answered ${String(code)}, which is none of its codes`);
  return name as ReplyOf<S>;
}
