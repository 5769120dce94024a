// Invariant 9 (docs/design.md, "Invariants the checker verifies"): the tenant groups' structures
// ("Tenants"). Each level's ring holds every named group with messages in line (a member with
// nothing left stays until the claim next reaches it and removes it: no problem); each
// group's count of runs is its runs in worker hashes; L<n>:grouped counts the grouped messages
// waiting; a payload in a group's queue names that group, level and policy (and a payload in the
// level's own queues names none); a grouped `last` key held by a run is that run's, and each run
// of a grouped `last` message holds it; a grouped index entry points to its job.
//
// Read as the rest of the checker reads: SCAN for the groups' keys, the rings and lists a
// thousand at a time, one short record per grouped job id; every suspicion confirmed in one
// atomic read (checkState.lua) before it is reported.
import { isGroupName } from '../../groups';
import type { Level } from '../../levels';
import { jobIdOf, routeOf, type Route } from '../format/job';
import { shown, type Bytes } from './payload';
import { hashChunks, listChunks, readHash, scanKeys, zsetChunks } from './read';
import type { PartitionScan } from './scan';
import type { Answer, Probe } from './state-script';

const LEVELS: readonly Level[] = [1, 2];
/** Groups whose queue lengths are read per pipeline. */
const LENGTHS_BATCH = 200;

/** What follows `{p}:L<n>:g:<group>` (no one is the end of another, so a key parses one way only). */
const SUFFIXES = [':last:order', ':last:newest', ':execute', ':discard', ':last'] as const;

/** A group's key of a level, read back: its level and group; null for a key of no known form. */
export function groupOfKey(tag: string, key: Bytes): { level: Level; group: string } | null {
  const head = new RegExp(`^${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:L([12]):g:`).exec(key);
  if (!head) return null;
  const suffix = SUFFIXES.find((s) => key.endsWith(s));
  if (!suffix) return null;
  const group = key.slice(head[0].length, key.length - suffix.length);
  return isGroupName(group) ? { level: Number(head[1]) as Level, group } : null;
}

/**
 * The group a payload names, read as the scripts' groupOf.lua reads it: the `,"group":"<g>"`
 * of its routing prefix (before "method": the caller's content comes after). Undefined: none,
 * the default group.
 */
export function groupOfPayload(payload: Bytes): string | undefined {
  const at = payload.indexOf(',"group":"');
  if (at === -1) return undefined;
  const method = payload.indexOf(',"method":"');
  if (method !== -1 && method < at) return undefined;
  return /^([A-Za-z0-9_.:@/+=-]+)"/.exec(payload.slice(at + 10))?.[1];
}

/** The field of {p}:running a run of a grouped `last` message holds. */
export const groupedHeldField = (level: Level, group: string, key: Bytes): Bytes => `G${level}:${group}\n${key}`;

/** A grouped waiting job's index entry: wL<n>:<policy>@<group>[\n<key>]. */
const GROUPED_ENTRY = /^wL([12]):(execute|discard|last)@([^\n]+)(?:\n([\s\S]*))?$/;
export const isGroupedEntry = (where: Bytes): boolean => /^wL[12]:[a-z]+@/.test(where);
const groupedEntryOf = (level: Level, group: string, policy: string, key?: Bytes): Bytes =>
  `wL${level}:${policy}@${group}${policy === 'last' ? `\n${key}` : ''}`;

type GroupPolicy = 'execute' | 'discard' | 'last';

/** Per level: each group with keys or a ring entry, and what the plain reads found. */
interface GroupLevel {
  inRing: boolean;
  /** execute, discard, last:order lengths and the `last` hash's size. */
  lengths: [number, number, number, number];
}

export async function checkGroups(scan: PartitionScan): Promise<void> {
  const { redis, keys } = scan.store;
  const groups: Record<Level, Map<string, GroupLevel>> = { 1: new Map(), 2: new Map() };
  const entry = (level: Level, group: string): GroupLevel => {
    let g = groups[level].get(group);
    if (!g) groups[level].set(group, (g = { inRing: false, lengths: [0, 0, 0, 0] }));
    return g;
  };
  for await (const key of scanKeys(redis, `${scan.tag.replace(/[*?[\]\\]/g, '\\$&')}:L[12]:g:*`)) {
    const found = groupOfKey(scan.tag, key);
    if (found) entry(found.level, found.group);
  }
  for (const level of LEVELS) {
    for await (const chunk of zsetChunks(redis, keys.groupRing(level))) for (const [member] of chunk) entry(level, member).inRing = true;
  }
  for (const level of LEVELS) await readLengths(scan, level, groups[level]);

  const waiting: Record<Level, number> = { 1: 0, 2: 0 };
  /** Grouped jobs waiting: id -> the index entry that would say so. */
  const waitingIds = new Map<string, Bytes>();
  for (const level of LEVELS) {
    for (const group of groups[level].keys()) {
      if (!isGroupName(group)) continue;
      waiting[level] += await readGroupQueues(scan, level, group, waitingIds);
    }
  }
  checkRings(scan, groups);
  await checkGroupRuns(scan, new Set([...groups[1].keys(), ...groups[2].keys()]));
  await checkGrouped(scan, waiting, groups);
  checkGroupedEntries(scan, waitingIds);
  await scan.confirmPending();
}

async function readLengths(scan: PartitionScan, level: Level, groups: Map<string, GroupLevel>): Promise<void> {
  const { redis, keys } = scan.store;
  const names = [...groups.keys()];
  for (let from = 0; from < names.length; from += LENGTHS_BATCH) {
    const batch = names.slice(from, from + LENGTHS_BATCH);
    const p = redis.pipeline();
    for (const g of batch) {
      p.llen(keys.groupQueue(level, g, 'execute'))
        .llen(keys.groupQueue(level, g, 'discard'))
        .llen(keys.groupOrder(level, g))
        .hlen(keys.groupQueue(level, g, 'last'));
    }
    const replies = (await p.exec())!.map(([err, n]) => {
      if (err) throw err;
      return Number(n);
    });
    batch.forEach((g, i) => (groups.get(g)!.lengths = [replies[i * 4], replies[i * 4 + 1], replies[i * 4 + 2], replies[i * 4 + 3]]));
  }
}

const groupHolds = (level: Level, group: string, policy: GroupPolicy, field: Bytes, payload: Bytes): Probe => [
  'groupHolds',
  String(level),
  group,
  policy,
  field,
  payload,
];

/** Reads a group's queues of a level: each payload must name that group, level and policy. Returns how many wait. */
async function readGroupQueues(scan: PartitionScan, level: Level, group: string, waitingIds: Map<string, Bytes>): Promise<number> {
  const { redis, keys } = scan.store;
  let n = 0;
  const one = (policy: GroupPolicy, field: Bytes, payload: Bytes): void => {
    n += 1;
    scan.counts.waiting += 1;
    const route = routeOf(payload);
    const where = `${keys.groupQueue(level, group, policy)}${policy === 'last' ? ` field ${shown(field)}` : ''}`;
    const named = groupOfPayload(payload);
    const id = route?.id ?? jobIdOf(payload) ?? undefined;
    if (!route) {
      scan.suspect({
        code: 'PAYLOAD_UNREADABLE',
        message: `${where}: payload has no routing prefix the scripts can read: ${shown(payload.slice(0, 120))}`,
        ids: id ? [id] : undefined,
        probes: [groupHolds(level, group, policy, field, payload), ['route', payload]],
        holds: ([held, luaRoute]) => Number(held) > 0 && luaRoute === null,
      });
      return;
    }
    if (id) waitingIds.set(id, groupedEntryOf(level, group, policy, field));
    if (route.level === level && route.policy === policy && named === group && (policy !== 'last' || route.key === field)) return;
    scan.suspect({
      code: 'GROUP_PAYLOAD_MISPLACED',
      message: `${where}: job ${route.id} says level ${route.level}, ${route.policy}${route.key !== undefined ? ` key ${shown(route.key)}` : ''}, ${named === undefined ? 'no group' : `group ${named}`}`,
      ids: [route.id],
      probes: [groupHolds(level, group, policy, field, payload), ['route', payload], ['groupOf', payload]],
      holds: ([held, r, g]) =>
        Number(held) > 0 &&
        Array.isArray(r) &&
        (Number(r[1]) !== level || r[2] !== policy || (policy === 'last' && r[3] !== field) || (g === null ? undefined : g) !== group),
    });
  };
  for (const policy of ['execute', 'discard'] as const) {
    for await (const chunk of listChunks(redis, keys.groupQueue(level, group, policy))) {
      for (const payload of chunk) one(policy, '', payload);
      await scan.confirmPending();
    }
  }
  for await (const chunk of hashChunks(redis, keys.groupQueue(level, group, 'last'))) {
    for (const [field, payload] of chunk) one('last', field, payload);
    await scan.confirmPending();
  }
  return n;
}

/** A payload in a level's own queues (the default group) must name no group (called by jobs.ts for each). */
export function checkUngrouped(scan: PartitionScan, where: string, holds: Probe, payload: Bytes, route: Route): void {
  const named = groupOfPayload(payload);
  if (named === undefined) return;
  scan.suspect({
    code: 'GROUP_PAYLOAD_MISPLACED',
    message: `${where}: job ${route.id} of group ${named} waits in the level's own queue, not in its group's`,
    ids: [route.id],
    probes: [holds, ['groupOf', payload]],
    holds: ([held, g]) => Number(held) > 0 && g === named,
  });
}

/** Groups with messages in line outside the ring (no claim would serve them). */
function checkRings(scan: PartitionScan, groups: Record<Level, Map<string, GroupLevel>>): void {
  const ring = (level: Level): string => scan.store.keys.groupRing(level);
  for (const level of LEVELS) {
    for (const [group, g] of groups[level]) {
      const [execute, discard, order, last] = g.lengths;
      const lines = (a: Answer): number[] => a as number[];
      // A member with nothing waiting is no problem: the claim leaves it there and removes it when it next reaches it.
      if (execute + discard + order + last > 0) scan.counts.groupLevels += 1;
      if (!g.inRing && execute + discard + order > 0) {
        scan.suspect({
          code: 'GROUP_NOT_IN_RING',
          message: `group ${group} has ${execute + discard + order} message(s) in line in level ${level} but is not in ${ring(level)}: no claim serves it`,
          probes: [['groupLines', String(level), group]],
          holds: ([a]) => lines(a)[4] === 0 && lines(a)[0] + lines(a)[1] + lines(a)[2] > 0,
          repair: () => ({ action: 'ringAdd', args: [String(level), group] }),
        });
      }
    }
  }
}

/** {p}:groups:running equals each group's runs in worker hashes; grouped `last` runs and held keys agree. */
async function checkGroupRuns(scan: PartitionScan, known: Set<string>): Promise<void> {
  const { redis, keys } = scan.store;
  const counted = new Map<string, number>();
  for (const [token, run] of scan.runs) {
    const group = groupOfPayload(run.payload);
    if (group === undefined) continue;
    counted.set(group, (counted.get(group) ?? 0) + 1);
    if (run.route?.policy === 'last') checkRunHoldsGroupedKey(scan, token, run.worker, run.payload, run.route, group);
  }
  const stored = await readHash(redis, keys.groupsRunning);
  for (const group of new Set([...counted.keys(), ...stored.keys()])) {
    const value = stored.get(group);
    const n = counted.get(group) ?? 0;
    if (value === undefined ? n === 0 : /^\d+$/.test(value) && Number(value) === n) continue;
    known.add(group);
    scan.suspect({
      code: 'GROUP_RUNNING_MISMATCH',
      message: `${keys.groupsRunning} ${group} is ${value ?? 'absent'} but the group has ${n} run(s) in worker hashes`,
      probes: [['groupRuns', group]],
      holds: ([a]) => {
        const [runs, now] = a as [number, Bytes | null];
        return now === null ? runs !== 0 : !/^\d+$/.test(now) || Number(now) !== runs;
      },
      repair: () => ({ action: 'setGroupRunning', args: [group] }),
    });
  }
  checkGroupedHeldKeys(scan);
}

/** A run of a grouped `last` message holds `G<n>:<group>\n<key>` in {p}:running with its token. */
function checkRunHoldsGroupedKey(scan: PartitionScan, token: string, worker: Bytes, payload: Bytes, route: Route, group: string): void {
  const name = groupedHeldField(route.level, group, route.key!);
  const holder = scan.running.get(name);
  if (holder === token) return;
  scan.suspect({
    code: 'RUN_KEY_NOT_HELD',
    message: `${scan.store.keys.workerJobs(worker)} run ${token} runs job ${route.id} of group ${group} key ${shown(route.key!)} but ${scan.store.keys.running} ${holder === undefined ? 'does not hold the key' : `holds it for run ${holder}`}`,
    ids: [route.id],
    keys: [route.key!],
    probes: [
      ['holds', 'run', worker, token, payload],
      ['hget', 'running', name],
    ],
    holds: ([held, now]) => Number(held) > 0 && now !== token,
  });
}

/** Each `G<n>:<group>\n<key>` field of {p}:running holds the token of a run of that group and key. */
function checkGroupedHeldKeys(scan: PartitionScan): void {
  for (const [name, token] of scan.running) {
    const m = /^G([12]):([^\n]+)\n([\s\S]*)$/.exec(name);
    if (!name.startsWith('G')) continue;
    const run = scan.runs.get(token);
    const ofIt = (payload: Bytes | undefined): boolean => {
      if (!m || payload === undefined) return false;
      const route = routeOf(payload);
      return route?.policy === 'last' && route.level === Number(m[1]) && route.key === m[3] && groupOfPayload(payload) === m[2];
    };
    if (ofIt(run?.payload)) continue;
    scan.suspect({
      code: 'HELD_KEY_ORPHANED',
      message: `${scan.store.keys.running} holds ${shown(name)} for run ${token}: ${!m ? 'a field of no known form' : run ? `run ${token} is of another group or key` : `no worker hash holds run ${token}`}`,
      keys: m ? [m[3]] : undefined,
      probes: [
        ['hget', 'running', name],
        ['runOf', token],
      ],
      holds: ([held, found]) => held === token && !(Array.isArray(found) && ofIt(String(found[1]))),
    });
  }
}

/** {p}:stats L<n>:grouped equals the grouped messages waiting in level n. */
async function checkGrouped(scan: PartitionScan, waiting: Record<Level, number>, groups: Record<Level, Map<string, GroupLevel>>): Promise<void> {
  const { redis, keys } = scan.store;
  const stored = await redis.hmget(keys.stats, 'L1:grouped', 'L2:grouped');
  for (const level of LEVELS) {
    const value = stored[level - 1];
    if (Number(value ?? 0) === waiting[level] && (value === null || /^\d+$/.test(value))) continue;
    const names = [...groups[level].keys()].join('\n');
    scan.suspect({
      code: 'GROUPED_MISMATCH',
      message: `${keys.stats} L${level}:grouped is ${value ?? 'absent'} but ${waiting[level]} grouped message(s) wait in level ${level}`,
      probes: [['grouped', String(level), names]],
      holds: ([a]) => {
        const [n, now] = a as [number, Bytes | null];
        return now === null ? n !== 0 : !/^\d+$/.test(now) || Number(now) !== n;
      },
      repair: () => ({ action: 'recountGrouped', args: [String(level), names] }),
    });
  }
}

/** A grouped index entry (skipped by jobs.ts's index pass) points to its job, waiting in that group. */
function checkGroupedEntries(scan: PartitionScan, waitingIds: Map<string, Bytes>): void {
  for (const [id, where] of scan.groupedEntries) {
    const expected = waitingIds.get(id);
    if (expected === where) continue;
    const m = GROUPED_ENTRY.exec(where);
    const elsewhere = expected ?? (scan.seen.has(id) ? 'elsewhere' : undefined);
    scan.suspect({
      code: elsewhere === undefined ? 'INDEX_DANGLING' : 'INDEX_WRONG',
      message: `index entry of job ${id} says ${shown(where)}${m ? '' : ', a form no script writes'}, ${elsewhere === undefined ? 'where no such job is' : `but the job is ${expected ? `at ${shown(expected)}` : 'elsewhere'}`}`,
      ids: [id],
      probes: [
        ['entry', id],
        ['idAtEntry', id, where],
      ],
      holds: ([now, there]) => now === where && Number(there) === 0,
      // Only an entry pointing nowhere goes; one pointing to the wrong place is left (its job is somewhere).
      repair: () => (elsewhere === undefined ? { action: 'dropEntry', args: [id, where] } : null),
    });
  }
  scan.groupedEntries.length = 0;
}
