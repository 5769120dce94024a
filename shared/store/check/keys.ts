// Invariants 2 to 4 (docs/design.md, "Invariants the checker verifies"), about `last` keys:
// each held key belongs to a run that a worker hash holds, each run of a `last` message holds
// its key, each waiting message is in line exactly once or parked behind its key's run, and
// the newest mark of a key agrees with what waits and points to a message that is alive.
// Invariants 3 and 4 are checked per scope: the level's own structures here, each named
// group's by group-queues.ts with the same functions.
import type { Level } from '../../levels';
import { jobIdOf, routeOf, type Route } from '../format/job';
import { shown, type Bytes } from './payload';
import { groupedHeldField, groupOfPayload } from './groups';
import { describePlace, samePlace, type Place } from './place';
import { listChunks, readHash } from './read';
import type { PartitionScan } from './scan';
import type { Probe } from './state-script';

const LEVELS: readonly Level[] = [1, 2];
const field = (level: Level, key: Bytes): Bytes => `L${level}:${key}`;
const hget = (suffix: string, name: Bytes): Probe => ['hget', suffix, name];

/** The small structures read whole before the jobs: held keys, newest marks, the order lists. */
export async function readKeyState(scan: PartitionScan): Promise<void> {
  const { redis, keys } = scan.store;
  scan.running = await readHash(redis, keys.running);
  scan.counts.heldKeys = scan.running.size;
  for (const level of LEVELS) {
    for (const [key, id] of await readHash(redis, keys.newest(level))) scan.newest[level].set(key, id);
    scan.counts.newestMarks += scan.newest[level].size;
    for await (const chunk of listChunks(redis, keys.order(level))) {
      for (const key of chunk) scan.order[level].set(key, (scan.order[level].get(key) ?? 0) + 1);
    }
  }
}

/**
 * What was read of a set of `last` structures: a level's own (the default group's), or a named
 * group's in that level (docs/design.md, "Tenants": a key's scope is its group). The same
 * invariants hold in each, with the same codes and repairs.
 */
export interface LastScope {
  level: Level;
  /** undefined: the level's own structures. */
  group?: string;
  /** Keys in line, with how many times each is there. */
  order: Map<Bytes, number>;
  /** Newest marks: key -> id of its newest accepted message. */
  newest: Map<Bytes, Bytes>;
  /** Keys with a waiting message. */
  waiting: Set<Bytes>;
}

/** The level's own `last` structures, as readKeyState and the level's reads fill them. */
export const levelScope = (scan: PartitionScan, level: Level): LastScope => ({
  level,
  order: scan.order[level],
  newest: scan.newest[level],
  waiting: scan.waitingLast[level],
});

/** A scope's key names, the field of {p}:running its key holds while it runs, and the words naming it to checkState.lua. */
function namesOf(scan: PartitionScan, scope: LastScope) {
  const k = scan.store.keys;
  const { level, group } = scope;
  const hash = group === undefined ? k.queue(level, 'last') : k.groupQueue(level, group, 'last');
  const order = group === undefined ? k.order(level) : k.groupOrder(level, group);
  const newest = group === undefined ? k.newest(level) : k.groupNewest(level, group);
  /** A key as the `hget` probe names it: what follows the tag. */
  const suffix = (name: string): string => name.slice(k.tag.length + 1);
  return {
    hash,
    order,
    newest,
    hashProbe: (key: Bytes): Probe => hget(suffix(hash), key),
    newestProbe: (key: Bytes): Probe => hget(suffix(newest), key),
    held: (key: Bytes): Bytes => (group === undefined ? field(level, key) : groupedHeldField(level, group, key)),
    /** Where a waiting message of this key sits. */
    place: (key: Bytes): Place => (group === undefined ? { kind: 'last', level, key } : { kind: 'groupLast', level, group, key }),
    /** The script's words for a key of this scope: level, key, group ('' the level's own). */
    words: (key: Bytes): Bytes[] => [String(level), key, group ?? ''],
  };
}

/** A waiting `last` message: in line or parked behind its key's run, and its key's newest. */
export function checkWaitingLast(scan: PartitionScan, scope: LastScope, key: Bytes, id: string): void {
  const names = namesOf(scan, scope);
  const [level, , group] = names.words(key);
  const held = scan.running.has(names.held(key));
  if ((scope.order.get(key) ?? 0) === 0 && !held) {
    scan.suspect({
      code: 'LAST_NOT_IN_LINE',
      message: `job ${id} of key ${shown(key)} waits in ${names.hash} but its key is not in ${names.order} and no run holds it`,
      ids: [id],
      keys: [key],
      probes: [names.hashProbe(key), ['inLine', level, key, group], hget('running', names.held(key))],
      holds: ([payload, inLine, token]) => payload !== null && Number(inLine) === 0 && token === null,
      repair: () => ({ action: 'lineUp', args: names.words(key) }),
    });
  }
  const newest = scope.newest.get(key);
  if (newest !== id) {
    scan.suspect({
      code: 'NEWEST_MISMATCH',
      message: `job ${id} waits for key ${shown(key)} in ${names.hash} but the key's newest mark (${names.newest}) says ${newest === undefined ? 'nothing' : newest}`,
      ids: [id],
      keys: [key],
      probes: [names.hashProbe(key), names.newestProbe(key)],
      holds: ([payload, mark]) => typeof payload === 'string' && jobIdOf(payload) === id && mark !== id,
    });
  }
}

/** A run of a `last` message must hold its key in {p}:running. */
export function checkRunHoldsKey(scan: PartitionScan, place: Place & { kind: 'run' }, payload: Bytes, route: Route): void {
  const name = field(route.level, route.key!);
  const holder = scan.running.get(name);
  if (holder === place.token) return;
  scan.suspect({
    code: 'RUN_KEY_NOT_HELD',
    message: `${describePlace(place, scan.tag)} runs job ${route.id} of key ${shown(route.key!)} but ${scan.store.keys.running} ${holder === undefined ? 'does not hold the key' : `holds it for run ${holder}`}`,
    ids: [route.id],
    keys: [route.key!],
    probes: [['holds', 'run', place.worker, place.token, payload], hget('running', name)],
    holds: ([held, token]) => Number(held) > 0 && token !== place.token,
  });
}

/** Each held key's token belongs to a run of that key in some worker hash. */
function checkHeldKeys(scan: PartitionScan): void {
  for (const [name, token] of scan.running) {
    scan.token(token, `${scan.store.keys.running} ${shown(name)}`);
    // A grouped key (G<n>:<group>\n<key>): the groups' check reads it (groups.ts).
    if (name.startsWith('G')) continue;
    const m = /^L([12]):([\s\S]*)$/.exec(name);
    const level = m ? (Number(m[1]) as Level) : null;
    const key = m ? m[2] : null;
    const run = scan.runs.get(token);
    // A run of a grouped message holds its key under its group's name, never this field.
    const ofIt = (payload: Bytes, route: Route | null): boolean =>
      route?.policy === 'last' && route.level === level && route.key === key && groupOfPayload(payload) === undefined;
    if (run && ofIt(run.payload, run.route)) continue;
    const group = run ? groupOfPayload(run.payload) : undefined;
    const why = !m
      ? 'a field of no known form'
      : run
        ? `run ${token} in ${scan.store.keys.workerJobs(run.worker)} is ${run.route ? `of ${run.route.policy === 'last' ? `key ${shown(run.route.key!)} (level ${run.route.level}${group === undefined ? '' : `, group ${group}`})` : 'no `last` key'}` : 'unreadable'}`
        : `no worker hash holds run ${token}`;
    scan.suspect({
      code: 'HELD_KEY_ORPHANED',
      message: `${scan.store.keys.running} holds ${shown(name)} for run ${token}: ${why}`,
      keys: key === null ? undefined : [key],
      probes: [hget('running', name), ['runOf', token]],
      holds: ([held, found]) => {
        if (held !== token) return false;
        if (!Array.isArray(found)) return true;
        return !ofIt(String(found[1]), routeOf(String(found[1])));
      },
      // Only a key no run holds is released: a run of another key ends by itself.
      repair: ([, found]) => (level !== null && key !== null && !Array.isArray(found) ? { action: 'release', args: [String(level), key, token] } : null),
    });
  }
}

/** Each key in line has a waiting message (or a run), and is there once. */
export function checkLines(scan: PartitionScan, scope: LastScope): void {
  const names = namesOf(scan, scope);
  for (const [key, times] of scope.order) {
    const [level, , group] = names.words(key);
    const probes: Probe[] = [['inLine', level, key, group], names.hashProbe(key), hget('running', names.held(key))];
    if (times > 1) {
      scan.suspect({
        code: 'LAST_IN_LINE_TWICE',
        message: `key ${shown(key)} is ${times} times in ${names.order}`,
        keys: [key],
        probes,
        holds: ([inLine]) => Number(inLine) > 1,
        repair: () => ({ action: 'dedupeLine', args: names.words(key) }),
      });
    }
    if (!scope.waiting.has(key) && !scan.running.has(names.held(key))) {
      scan.suspect({
        code: 'ORDER_WITHOUT_PAYLOAD',
        message: `key ${shown(key)} is in ${names.order} with no message waiting in ${names.hash} and no run`,
        keys: [key],
        probes,
        holds: ([inLine, payload, token]) => Number(inLine) > 0 && payload === null && token === null,
        repair: () => ({ action: 'unline', args: names.words(key) }),
      });
    }
  }
}

/** Each newest mark points to a message of that key (and group) that waits in this scope, runs, is delayed or is dead. */
export function checkNewest(scan: PartitionScan, scope: LastScope): void {
  const names = namesOf(scan, scope);
  const { level, group } = scope;
  for (const [key, id] of scope.newest) {
    const at = scan.seen.get(id);
    const there = at !== undefined && (['run', 'delayed', 'dead'].includes(at.place.kind) || samePlace(at.place, names.place(key)));
    const ofKey = at?.route?.policy === 'last' && at.route.level === level && at.route.key === key && at.route.group === group;
    if (there && ofKey) continue;
    const [lvl, , g] = names.words(key);
    scan.suspect({
      code: 'NEWEST_DANGLING',
      message: `${names.newest} says job ${id} is the newest of key ${shown(key)}, but ${
        at
          ? `that job is in ${describePlace(at.place, scan.tag)}${
              !at.route
                ? ', its payload unreadable'
                : at.route.key !== key
                  ? ' with another key'
                  : at.route.group !== group
                    ? ` of ${at.route.group === undefined ? 'no group' : `group ${at.route.group}`}`
                    : ''
            }`
          : 'that job is nowhere'
      }`,
      ids: [id],
      keys: [key],
      probes: [names.newestProbe(key), ['newestAlive', lvl, key, id, g]],
      holds: ([mark, where]) => mark === id && where === null,
      repair: () => ({ action: 'dropNewest', args: [lvl, key, id, g] }),
    });
  }
}

/** After the jobs were read: the held keys, the lines and the newest marks. */
export function checkKeys(scan: PartitionScan): void {
  checkHeldKeys(scan);
  for (const level of LEVELS) {
    checkLines(scan, levelScope(scan, level));
    checkNewest(scan, levelScope(scan, level));
  }
}
