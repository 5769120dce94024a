// Tenant groups as an operator sees them (docs/design.md, "Tenants"): which groups have work in
// line, how much, how many runs each has now and whether it is held back by its cap or its
// rate; and the run-time limits `switchyard group` sets. Used by `stats`, `queue`, `group`, the
// dashboard and /metrics.
//
// Reading is bounded: the rings are read in chunks, at most `maxRead` groups per partition per
// call (the rest are counted by ZCARD, not read), then one pipeline per partition reads each
// group's queue lengths and counters. Plain reads, not one atomic step: a group claimed from
// between two reads shows its state of a moment earlier, which is all a gauge needs.
import { decodeLimits, formatRate, isGroupName, parseRate, GROUP_NAME_RULE, type GroupLimits } from '../groups';
import type { Level } from '../levels';
import { keyNamed, type Keys } from '../store/keys';
import { keyNamesOf, runScript } from '../store/scripts';
import type { Queues } from '../store/queues';
import type { RedisClient } from '../store/redis';

const LEVELS: readonly Level[] = [1, 2];

/** Most groups read per partition per call (the rest are counted, and the answer says it was cut). */
export const GROUPS_READ_MAX = 1000;
/** Ring members read per ZRANGE. */
const RING_CHUNK = 250;
/** The groups shown one by one; the rest are summed (the label `other` of /metrics, one line of stats). */
export const GROUPS_TOP_DEFAULT = 10;

export interface GroupStat {
  name: string;
  /** Messages waiting in the group's queues per level: its execute and discard lists and its `last` hash. */
  backlog: Record<Level, number>;
  /** Its runs in worker hashes now ({p}:groups:running). */
  running: number;
  /** The run-time override ({p}:groups:limits); an absent part is the workers' flag. */
  limits: GroupLimits;
  /** Held back now: its rate limiter's next turn is still ahead, or it runs as many as its cap (when the cap is set here). */
  limited: false | 'rate' | 'concurrency';
  /** With a rate limit: how long until its next run may start (ms, Redis time; 0 when due). */
  dueInMs?: number;
}

export interface GroupsRead {
  groups: GroupStat[];
  /** Groups in the rings (each partition's two rings, a group in both counted once where read). */
  active: number;
  /** Groups not read because a partition held more than the bound: the figures cover the others. */
  unread: number;
  /** Partitions that did not answer. */
  unavailablePartitions?: number[];
}

export interface GroupsSummary {
  /** Groups read, by backlog (largest first), at most `top`. */
  top: GroupStat[];
  /** The other groups read, summed (null when there are none). */
  other: { groups: number; backlog: Record<Level, number>; running: number; limited: number } | null;
  active: number;
  unread: number;
  unavailablePartitions?: number[];
}

const totalBacklog = (g: { backlog: Record<Level, number> }): number => g.backlog[1] + g.backlog[2];

/** One partition's groups: those in the rings (up to `maxRead`) and those with runs but nothing in line. */
export async function readPartitionGroups(redis: RedisClient, keys: Keys, maxRead = GROUPS_READ_MAX): Promise<GroupsRead> {
  const names = new Set<string>();
  const [[e1, c1], [e2, c2]] = (await redis.pipeline().zcard(keys.groupRing(1)).zcard(keys.groupRing(2)).exec())!;
  if (e1 || e2) throw e1 ?? e2;
  const ringSize = Number(c1) + Number(c2);
  for (const level of LEVELS) {
    for (let from = 0; names.size < maxRead; from += RING_CHUNK) {
      const members = await redis.zrange(keys.groupRing(level), from, from + RING_CHUNK - 1);
      for (const m of members) if (names.size < maxRead) names.add(m);
      if (members.length < RING_CHUNK) break;
    }
  }
  // Groups whose work is all running (nothing in line) are active too: one HSCAN chunk at a time, within the bound.
  let cursor = '0';
  do {
    if (names.size >= maxRead) break;
    const [next, flat] = await redis.hscan(keys.groupsRunning, cursor, 'COUNT', RING_CHUNK);
    cursor = next;
    for (let i = 0; i < flat.length && names.size < maxRead; i += 2) names.add(flat[i]);
  } while (cursor !== '0');
  const list = [...names].filter(isGroupName);
  // A ring member with nothing left stays until a claim reaches it: not active.
  const read = (await readGroups(redis, keys, list)).filter((g) => totalBacklog(g) > 0 || g.running > 0);
  if (names.size < maxRead) return { groups: read, active: read.length, unread: 0 };
  // Cut at the bound: the ring entries not read are counted (a group in both rings counts twice there).
  const unread = Math.max(0, ringSize - (await countInRings(redis, keys, list)));
  return { groups: read, active: read.length + unread, unread };
}

/** How many ring entries (level 1 and level 2 counted apart) these groups are. */
async function countInRings(redis: RedisClient, keys: Keys, names: readonly string[]): Promise<number> {
  if (names.length === 0) return 0;
  const p = redis.pipeline();
  for (const level of LEVELS) p.zmscore(keys.groupRing(level), ...names);
  let n = 0;
  for (const [err, scores] of (await p.exec())!) {
    if (err) throw err;
    for (const s of scores as Array<string | null>) if (s !== null) n += 1;
  }
  return n;
}

/** The figures of the named groups of one partition, in one pipeline. */
export async function readGroups(redis: RedisClient, keys: Keys, names: readonly string[]): Promise<GroupStat[]> {
  if (names.length === 0) return [];
  const p = redis.pipeline();
  for (const name of names) {
    for (const level of LEVELS) {
      p.llen(keys.groupQueue(level, name, 'execute'))
        .llen(keys.groupQueue(level, name, 'discard'))
        .hlen(keys.groupQueue(level, name, 'last'));
    }
  }
  p.hmget(keys.groupsRunning, ...names)
    .hmget(keys.groupsLimits, ...names)
    .hmget(keys.groupsTat, ...names)
    .time();
  const replies = (await p.exec())!.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
  const base = names.length * 6;
  const running = replies[base] as Array<string | null>;
  const limits = replies[base + 1] as Array<string | null>;
  const tats = replies[base + 2] as Array<string | null>;
  const [seconds, micros] = replies[base + 3] as [string, string];
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  return names.map((name, i) => {
    const n = (j: number): number => Number(replies[i * 6 + j]);
    const stat: GroupStat = {
      name,
      backlog: { 1: n(0) + n(1) + n(2), 2: n(3) + n(4) + n(5) },
      running: Number(running[i] ?? 0),
      limits: limits[i] === null ? {} : decodeLimits(limits[i]!),
      limited: false,
    };
    const tat = tats[i] === null ? NaN : Number(tats[i]);
    if (Number.isFinite(tat)) stat.dueInMs = Math.max(0, tat - now);
    if (Number.isFinite(tat) && tat > now) stat.limited = 'rate';
    else if (stat.limits.concurrency !== undefined && stat.limits.concurrency > 0 && stat.running >= stat.limits.concurrency) stat.limited = 'concurrency';
    return stat;
  });
}

/** Every partition's groups (a group lives in one partition; one found in several is summed). */
export async function readDeploymentGroups(queues: Queues, maxRead = GROUPS_READ_MAX): Promise<GroupsRead> {
  await queues.locate();
  const parts = Array.from({ length: queues.partitions }, (_, p) => p);
  const results = await Promise.allSettled(parts.map((p) => readPartitionGroups(queues.redis, queues.keysOf(p), maxRead)));
  if (results.every((r) => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason;
  const byName = new Map<string, GroupStat>();
  const out: GroupsRead = { groups: [], active: 0, unread: 0 };
  results.forEach((r, p) => {
    if (r.status === 'rejected') {
      (out.unavailablePartitions ??= []).push(p);
      return;
    }
    out.unread += r.value.unread;
    for (const g of r.value.groups) {
      const known = byName.get(g.name);
      if (!known) {
        byName.set(g.name, g);
        continue;
      }
      known.backlog = { 1: known.backlog[1] + g.backlog[1], 2: known.backlog[2] + g.backlog[2] };
      known.running += g.running;
      known.limited ||= g.limited;
    }
    out.active += r.value.active;
  });
  out.groups = [...byName.values()];
  out.active -= results.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.groups.length : 0), 0) - out.groups.length;
  return out;
}

/** The `top` groups by backlog (then running, then name), the rest summed. */
export function summarizeGroups(read: GroupsRead, top = GROUPS_TOP_DEFAULT, level?: Level): GroupsSummary {
  const size = (g: GroupStat): number => (level === undefined ? totalBacklog(g) : g.backlog[level]);
  const sorted = read.groups
    .filter((g) => level === undefined || g.backlog[level] > 0)
    .sort((a, b) => size(b) - size(a) || b.running - a.running || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rest = sorted.slice(top);
  // For one level, with every group read: the groups with messages of that level.
  const active = level !== undefined && read.unread === 0 ? sorted.length : read.active;
  const summary: GroupsSummary = { top: sorted.slice(0, top), other: null, active, unread: read.unread };
  if (read.unavailablePartitions) summary.unavailablePartitions = read.unavailablePartitions;
  if (rest.length > 0) {
    summary.other = { groups: rest.length, backlog: { 1: 0, 2: 0 }, running: 0, limited: 0 };
    for (const g of rest) {
      summary.other.backlog[1] += g.backlog[1];
      summary.other.backlog[2] += g.backlog[2];
      summary.other.running += g.running;
      if (g.limited) summary.other.limited += 1;
    }
  }
  return summary;
}

/** A change of a group's limits: a number sets that part, 0 is "no limit", null clears the override (the workers' flag applies), undefined keeps it. */
export interface LimitsChange {
  concurrency?: number | null;
  rate?: number | null;
}

export class GroupNameError extends Error {}

/** Most runs at once a cap may name (a bigger one is a typo; `off` is no cap). */
const CONCURRENCY_MAX = 1_000_000;

/**
 * A concurrency as an operator writes it (`switchyard group --concurrency`, the dashboard): a
 * whole number ≥ 1, `off` (0: no cap) or `default` (null: the workers' --group-concurrency).
 * Throws the reason for anything else.
 */
export function parseConcurrencyChange(text: string): number | null {
  if (text === 'default') return null;
  if (text === 'off' || text === '0') return 0;
  if (!/^\d{1,7}$/.test(text) || Number(text) > CONCURRENCY_MAX) {
    throw new RangeError(`a concurrency is a whole number from 1 to ${CONCURRENCY_MAX}, off or default (got ${JSON.stringify(text)})`);
  }
  return Number(text);
}

/** A rate as an operator writes it: 100/s, 30/m, 5/h (shared/groups.ts parseRate), `off` (0) or `default` (null). */
export function parseRateChange(text: string): number | null {
  if (text === 'default') return null;
  try {
    return parseRate(text);
  } catch (err) {
    throw new RangeError(`${(err as Error).message}, off or default`, { cause: err });
  }
}

/** Refuses a name no message can carry (shared/groups.ts). */
export function checkGroupName(name: string): void {
  if (!isGroupName(name)) throw new GroupNameError(`a group name is ${GROUP_NAME_RULE} (got ${JSON.stringify(name)})`);
}

const part = (value: number | null | undefined): string => (value === undefined ? '' : value === null ? '-' : String(value));

/**
 * Sets or clears a group's run-time limits in every partition ({p}:groups:limits): the group
 * lives in one, but which one depends on the partition count; the field costs a few bytes
 * where it is not used. Returns the limits now. A partition that does not answer does not keep
 * the others from changing; the call then fails naming it.
 */
export async function setGroupLimits(queues: Queues, name: string, change: LimitsChange): Promise<GroupLimits> {
  checkGroupName(name);
  if (change.concurrency != null && !(Number.isInteger(change.concurrency) && change.concurrency >= 0)) {
    throw new RangeError(`a concurrency is a whole number ≥ 0 (got ${change.concurrency})`);
  }
  if (change.rate != null && !(change.rate >= 0 && Number.isFinite(change.rate)))
    throw new RangeError(`a rate is a number of runs per second ≥ 0 (got ${change.rate})`);
  await queues.locate();
  const args = [name, part(change.concurrency), part(change.rate)];
  const names = keyNamesOf('setGroupLimits');
  const results = await Promise.allSettled(
    Array.from({ length: queues.partitions }, (_, p) =>
      runScript<[string, number, number]>(
        queues.redis,
        'setGroupLimits',
        names.map((n) => keyNamed(queues.keysOf(p), n)),
        args,
      ),
    ),
  );
  const failed = results.flatMap((r, p) => (r.status === 'rejected' ? [{ partition: p, error: (r.reason as Error).message }] : []));
  if (failed.length === results.length) throw (results[0] as PromiseRejectedResult).reason;
  // Several partitions: idle workers block on the deployment's wake keys, which a partition's script cannot reach.
  if (queues.partitions > 1) {
    for (const level of LEVELS) {
      if (results.some((r) => r.status === 'fulfilled' && r.value[level] === 1)) await queues.wakeIdle(level);
    }
  }
  if (failed.length > 0) {
    throw new Error(
      `group ${name}: limits set in every partition but ${failed.map((f) => f.partition).join(', ')}, which did not answer (${failed[0].error}): run it again once they do`,
    );
  }
  const value = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<[string, number, number]>).value[0];
  return value === '' ? {} : decodeLimits(value);
}

/** One group's figures across the deployment (for `switchyard group <name>`): zeros when it has nothing anywhere. */
export async function readGroup(queues: Queues, name: string): Promise<GroupStat & { inRing: Record<Level, boolean> }> {
  checkGroupName(name);
  await queues.locate();
  const out: GroupStat & { inRing: Record<Level, boolean> } = {
    name,
    backlog: { 1: 0, 2: 0 },
    running: 0,
    limits: {},
    limited: false,
    inRing: { 1: false, 2: false },
  };
  for (let p = 0; p < queues.partitions; p++) {
    const keys = queues.keysOf(p);
    const [g] = await readGroups(queues.redis, keys, [name]);
    const [r1, r2] = await queues.redis
      .pipeline()
      .zscore(keys.groupRing(1), name)
      .zscore(keys.groupRing(2), name)
      .exec()
      .then((r) => r!.map(([, v]) => v !== null));
    out.backlog = { 1: out.backlog[1] + g.backlog[1], 2: out.backlog[2] + g.backlog[2] };
    out.running += g.running;
    // The override is written to every partition; the one of the partition where the group has work wins.
    if (p === 0 || totalBacklog(g) > 0 || g.running > 0) out.limits = g.limits;
    out.limited ||= g.limited;
    if (g.dueInMs !== undefined) out.dueInMs = Math.max(out.dueInMs ?? 0, g.dueInMs);
    out.inRing = { 1: out.inRing[1] || r1, 2: out.inRing[2] || r2 };
  }
  return out;
}

/** The limits as `switchyard group` shows them: each part, or where it comes from. */
export function describeLimits(limits: GroupLimits): string {
  const c = limits.concurrency === undefined ? 'the workers’ --group-concurrency' : limits.concurrency === 0 ? 'no cap' : String(limits.concurrency);
  const r = limits.rate === undefined ? 'the workers’ --group-rate' : limits.rate === 0 ? 'no limit' : formatRate(limits.rate);
  return `concurrency ${c}, rate ${r}`;
}
