// What the checker learns about one partition while it reads it, and the problems it suspects
// there. A suspicion is only a reading of a moving state: it carries the probes that re-read
// what it rests on in one atomic step, and the test of their answers that confirms it.
import type { Level } from '../../levels';
import type { Store } from '../store';
import type { ProblemCode } from './codes';
import type { Route } from '../format/job';
import type { Bytes } from './payload';
import type { Place } from './place';
import { probe, type Answer, type Probe } from './state-script';

export interface Suspect {
  code: ProblemCode;
  message: string;
  ids?: string[];
  /** `last` keys involved, as bytes. */
  keys?: Bytes[];
  /** Read in one atomic step to confirm it. */
  probes: Probe[];
  /** From the probes' answers: does the problem hold? */
  holds(answers: Answer[]): boolean;
  /** The repair (an action of checkState.lua and its arguments), when one is safe. */
  repair?(answers: Answer[]): { action: string; args: Bytes[] } | null;
}

/** Where a job was found, and what its payload says. */
export interface Located {
  place: Place;
  route: Route | null;
}

/** A run in a worker hash. */
export interface Run {
  worker: Bytes;
  payload: Bytes;
  route: Route | null;
}

export interface PartitionCounts {
  waiting: number;
  running: number;
  delayed: number;
  dead: number;
  /** Dead entries whose job no script can route (kept there for an operator, as designed). */
  deadUnreadable: number;
  done: number;
  indexEntries: number;
  workers: number;
  /** Workers whose lease ran out within the grace, with runs still to be recovered. */
  recoveryPending: number;
  /** Suspicions of the plain reads that the atomic confirmation dropped (the state moved under the reader). */
  unconfirmed: number;
  heldKeys: number;
  newestMarks: number;
  /** Named groups with messages waiting, counted once per level they wait in. */
  groupLevels: number;
}

/** Every count at zero: one partition's before its reading, and the deployment's total. */
export function noCounts(): PartitionCounts {
  return {
    waiting: 0,
    running: 0,
    delayed: 0,
    dead: 0,
    deadUnreadable: 0,
    done: 0,
    indexEntries: 0,
    workers: 0,
    recoveryPending: 0,
    unconfirmed: 0,
    heldKeys: 0,
    newestMarks: 0,
    groupLevels: 0,
  };
}

/** A suspicion the atomic re-read bore out, with the answers it was confirmed on. */
export interface Confirmed {
  suspect: Suspect;
  answers: Answer[];
}

/** Suspicions confirmed per atomic read. */
const CONFIRM_BATCH = 50;

export class PartitionScan {
  /** Suspicions not yet confirmed: at most what one chunk of reading raises. */
  private pending: Suspect[] = [];
  readonly confirmed: Confirmed[] = [];
  /** Confirmed problems beyond the most listed (counted, not reported one by one). */
  dropped = 0;
  readonly seen = new Map<string, Located>();
  readonly runs = new Map<string, Run>();
  /** {p}:running: "L<level>:<key>" -> token. */
  running = new Map<Bytes, Bytes>();
  readonly newest: Record<Level, Map<Bytes, Bytes>> = { 1: new Map(), 2: new Map() };
  /** The level's own `last` keys in line, with how many times each is there (a group's: group-queues.ts, while it reads the group). */
  readonly order: Record<Level, Map<Bytes, number>> = { 1: new Map(), 2: new Map() };
  /** `last` keys with a waiting message. */
  readonly waitingLast: Record<Level, Set<Bytes>> = { 1: new Set(), 2: new Set() };
  readonly delayedByLevel: Record<Level, number> = { 1: 0, 2: 0 };
  /** {p}:workers: id -> lease expiry (Redis ms). */
  leases = new Map<Bytes, number>();
  /** Finished jobs kept for lookup ({p}:done). */
  readonly done = new Set<string>();
  /** The largest run token in use, and where it was seen. */
  maxToken: { value: bigint; where: string } = { value: 0n, where: '' };
  readonly counts: PartitionCounts = noCounts();

  constructor(
    readonly store: Store,
    readonly partition: number,
    /** Redis time (ms) when the reading began. */
    readonly now: number,
    /** Worker ids with a hash or an inbox in this partition (found by SCAN). */
    readonly workerKeys: ReadonlySet<Bytes>,
    readonly recoveryGraceMs: number,
    private readonly maxProblems: number,
  ) {}

  get tag(): string {
    return this.store.keys.tag;
  }

  /** Every worker id whose hash may hold runs: registered, or found by SCAN. */
  get workerIds(): Bytes[] {
    return [...new Set([...this.leases.keys(), ...this.workerKeys])];
  }

  suspect(s: Suspect): void {
    this.pending.push(s);
  }

  /**
   * Confirms what was suspected so far, each suspicion in one atomic re-read of what it rests
   * on (called after each chunk, so memory stays bounded by a chunk). A suspicion the state no
   * longer bears out was the reader's view of a moving state: counted, not reported.
   */
  async confirmPending(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, CONFIRM_BATCH);
      const answers = await probe(
        this.store,
        this.workerIds,
        batch.flatMap((s) => s.probes),
      );
      let at = 0;
      for (const suspect of batch) {
        const mine = answers.slice(at, at + suspect.probes.length);
        at += suspect.probes.length;
        if (!suspect.holds(mine)) this.counts.unconfirmed += 1;
        else if (this.confirmed.length < this.maxProblems) this.confirmed.push({ suspect, answers: mine });
        else this.dropped += 1;
      }
    }
  }

  /** A run token seen somewhere: the largest must stay at or below {p}:runs. */
  token(token: Bytes, where: string): void {
    if (!/^\d+$/.test(token)) return;
    const value = BigInt(token);
    if (value > this.maxToken.value) this.maxToken = { value, where };
  }
}
