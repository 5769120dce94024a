// The numbers of the queueing rules, in one place: config derives its defaults from them and
// the store passes them to the Lua scripts as arguments.

/** Level 2 refuses new messages once its backlog exceeds this share of --capacity… */
export const LEVEL2_OFF_ABOVE = 0.8;
/** …and accepts them again once the backlog falls under this share. */
export const LEVEL2_ON_BELOW = 0.6;
/** Default --discard-threshold, as a share of --capacity. */
export const DISCARD_SHARE = 0.6;
/** Default --reserve, as a share of --concurrency (rounded down). */
export const RESERVE_SHARE = 0.1;
/** The most finished jobs kept for lookup (--keep-done), the oldest pruned first. */
export const DONE_KEPT_MAX = 10_000;

// The rules themselves, stated once in TypeScript. The Lua scripts apply them inside Redis
// (atomically, with the state they keep there); these are what tests pin without Redis, and a
// property test drives both with the same inputs (test/integration/policy-rules.test.ts).

export type LevelChoice = 1 | 2;

/** Credits of the smooth weighted round robin between the levels ({p}:sched cw1, cw2). */
export interface Credits {
  1: number;
  2: number;
}

/**
 * The next level a claim takes. With work waiting in both levels: level 1 under `strict`, else
 * smooth weighted round robin (nginx's): each level earns its weight, the richer one is taken
 * and pays the sum of the weights — with 3:1 the picks go 1, 1, 2, 1, 1, 1, 2, 1, … An empty
 * level earns nothing, so it cannot bank credit while idle. Null when neither has work.
 */
export function pickLevel(
  credits: Credits,
  weights: readonly [number, number],
  has: { 1: boolean; 2: boolean },
  strict: boolean,
): { level: LevelChoice | null; credits: Credits } {
  if (has[1] && has[2]) {
    if (strict) return { level: 1, credits };
    const next = { 1: credits[1] + weights[0], 2: credits[2] + weights[1] };
    const level: LevelChoice = next[1] >= next[2] ? 1 : 2;
    next[level] -= weights[0] + weights[1];
    return { level, credits: next };
  }
  return { level: has[1] ? 1 : has[2] ? 2 : null, credits };
}

/**
 * The level-2 switch at enqueue, for a message that would add to level 2's backlog (everything
 * of level 2 that waits, delayed messages included): refused while the switch is off unless the
 * backlog has fallen under 60 % of the capacity (which turns it on); accepted, it turns the
 * switch off when the backlog passes 80 %.
 */
export function admitLevel2(active: boolean, backlog: number, capacity: number): { admitted: boolean; activeAfter: boolean } {
  if (!active && !(backlog < capacity * LEVEL2_ON_BELOW)) return { admitted: false, activeAfter: false };
  return { admitted: true, activeAfter: !(backlog + 1 > capacity * LEVEL2_OFF_ABOVE) };
}

/** After a claim: an off switch turns on once level 2's backlog is under 60 % of the capacity. */
export function level2ActiveAfterClaim(active: boolean, backlog: number, capacity: number): boolean {
  return active || backlog < capacity * LEVEL2_ON_BELOW;
}

/**
 * How many level-2 jobs a worker may take now: never into the last `reserve` slots (they stay
 * for level 1), never more than its free slots, none when it does not take level 2.
 */
export function level2Room(o: { free: number; concurrency: number; reserve: number; runningLevel2: number; takesLevel2: boolean }): number {
  return o.takesLevel2 ? Math.max(0, Math.min(o.free, o.concurrency - o.reserve - o.runningLevel2)) : 0;
}

// Tenants (docs/design.md, "Tenants"): the turn of the groups inside a level, stated as the
// claim's step applies it (claimJobs.lua, popLevel); test/integration/group-rules.test.ts drives
// both with the same inputs. Rates are left out here: they depend on Redis's clock.

/** The round of a level's groups: the ring of named groups, and the default group's turn stamp. */
export interface GroupRound {
  /**
   * Named group → its turn stamp ({p}:L<n>:groups). A group is in the ring from the message that
   * finds it out of the ring (it joins at that moment's stamp) until a pick finds it with nothing
   * in line; the lowest stamp is served next, equal stamps by name.
   */
  ring: Readonly<Record<string, number>>;
  /** The default group's stamp ({p}:sched turn:L<n>, 0 at first); it goes first on a tie. */
  defaultStamp: number;
}

/** What a pick needs to know besides the round. */
export interface GroupLoad {
  /** Messages in line per named group (absent: none). */
  waiting: Readonly<Record<string, number>>;
  /** Messages in line in the default group. */
  defaultWaiting: number;
  /** Runs of each named group now ({p}:groups:running; absent: none). */
  running: Readonly<Record<string, number>>;
  /** Each named group's cap: its own override, else the workers' flag (absent or 0: no cap). */
  caps: Readonly<Record<string, number>>;
}

/** The next pick of a level: a named group, the default group (null), or nothing that may run now. */
export type GroupPick = { group: string | null } | null;

/**
 * The next message's group inside a level, and the round after it. With the ring empty, the
 * default group's queues are served as they were before groups (its stamp does not move).
 * Otherwise the groups are taken in stamp order, the default group by its stamp among them:
 * a group at its cap is passed over and keeps its place; a named group with nothing in line
 * leaves the ring; the default group with nothing in line keeps its stamp. The group served
 * takes `stamp`, which must be above every stamp of the round: it goes to the back.
 */
export function pickGroup(round: GroupRound, load: GroupLoad, stamp: number): { pick: GroupPick; round: GroupRound } {
  const ring = { ...round.ring };
  if (Object.keys(ring).length === 0) return { pick: load.defaultWaiting > 0 ? { group: null } : null, round };
  const inTurn = Object.entries(ring)
    .sort(([a, sa], [b, sb]) => sa - sb || (a < b ? -1 : a > b ? 1 : 0))
    .map(([group]) => group);
  const defaultAt = inTurn.findIndex((group) => round.defaultStamp <= ring[group]);
  const candidates: Array<string | null> = [...inTurn];
  candidates.splice(defaultAt === -1 ? candidates.length : defaultAt, 0, null);
  for (const group of candidates) {
    if (group === null) {
      if (load.defaultWaiting > 0) return { pick: { group: null }, round: { ring, defaultStamp: stamp } };
      continue;
    }
    const cap = load.caps[group] ?? 0;
    if (cap > 0 && (load.running[group] ?? 0) >= cap) continue;
    if ((load.waiting[group] ?? 0) > 0) {
      ring[group] = stamp;
      return { pick: { group }, round: { ring, defaultStamp: round.defaultStamp } };
    }
    delete ring[group];
  }
  return { pick: null, round: { ring, defaultStamp: round.defaultStamp } };
}
