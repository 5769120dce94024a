// Invariant 9 (docs/design.md, "Invariants the checker verifies"): the tenant groups' structures
// ("Tenants"). Each level's ring holds every named group with messages in line (a member with
// nothing left stays until the claim next reaches it and removes it: no problem); each
// group's count of runs is its runs in worker hashes; L<n>:grouped counts the grouped messages
// waiting; a grouped `last` key held by a run is that run's, and each run of a grouped `last`
// message holds it. The groups' queues themselves are read by group-queues.ts, as places of
// jobs (a payload there names that group, level and policy; an index entry pointing there is
// checked as any other) with `last` structures of their own.
//
// Read as the rest of the checker reads: the rings and hashes a thousand entries at a time;
// every suspicion confirmed in one atomic read (checkState.lua) before it is reported.
import { isGroupName } from '../../groups';
import type { Level } from '../../levels';
import { routeOf, type Route } from '../format/job';
import type { GroupLevel, GroupsRead } from './group-queues';
import { shown, type Bytes } from './payload';
import { readHash } from './read';
import type { PartitionScan } from './scan';
import type { Answer } from './state-script';

const LEVELS: readonly Level[] = [1, 2];

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

/** After the groups' queues were read (group-queues.ts). */
export async function checkGroups(scan: PartitionScan, read: GroupsRead): Promise<void> {
  checkRings(scan, read.groups);
  await checkGroupRuns(scan, new Set([...read.groups[1].keys(), ...read.groups[2].keys()]));
  await checkGrouped(scan, read.waiting, read.groups);
  await scan.confirmPending();
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
