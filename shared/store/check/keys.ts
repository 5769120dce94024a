// Invariants 2 to 4 (docs/design.md, "Invariants the checker verifies"), about `last` keys:
// each held key belongs to a run that a worker hash holds, each run of a `last` message holds
// its key, each waiting message is in line exactly once or parked behind its key's run, and
// the newest mark of a key agrees with what waits and points to a message that is alive.
import type { Level } from '../../levels';
import { jobIdOf, routeOf, type Route } from '../format/job';
import { shown, type Bytes } from './payload';
import { describePlace, type Place } from './place';
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

/** A waiting `last` message: in line or parked, and its key's newest. */
export function checkWaitingLast(scan: PartitionScan, level: Level, key: Bytes, id: string): void {
  const held = scan.running.has(field(level, key));
  if ((scan.order[level].get(key) ?? 0) === 0 && !held) {
    scan.suspect({
      code: 'LAST_NOT_IN_LINE',
      message: `job ${id} of key ${shown(key)} waits in ${scan.store.keys.queue(level, 'last')} but its key is not in ${scan.store.keys.order(level)} and no run holds it`,
      ids: [id],
      keys: [key],
      probes: [hget(`L${level}:last`, key), ['inLine', String(level), key], hget('running', field(level, key))],
      holds: ([payload, inLine, token]) => payload !== null && Number(inLine) === 0 && token === null,
      repair: () => ({ action: 'lineUp', args: [String(level), key] }),
    });
  }
  const newest = scan.newest[level].get(key);
  if (newest !== id) {
    scan.suspect({
      code: 'NEWEST_MISMATCH',
      message: `job ${id} waits for key ${shown(key)} (level ${level}) but the key's newest mark says ${newest === undefined ? 'nothing' : newest}`,
      ids: [id],
      keys: [key],
      probes: [hget(`L${level}:last`, key), hget(`L${level}:last:newest`, key)],
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
    if (run && run.route?.policy === 'last' && run.route.level === level && run.route.key === key) continue;
    const why = !m
      ? 'a field of no known form'
      : run
        ? `run ${token} in ${scan.store.keys.workerJobs(run.worker)} is ${run.route ? `of ${run.route.policy === 'last' ? `key ${shown(run.route.key!)} (level ${run.route.level})` : 'no `last` key'}` : 'unreadable'}`
        : `no worker hash holds run ${token}`;
    scan.suspect({
      code: 'HELD_KEY_ORPHANED',
      message: `${scan.store.keys.running} holds ${shown(name)} for run ${token}: ${why}`,
      keys: key === null ? undefined : [key],
      probes: [hget('running', name), ['runOf', token]],
      holds: ([held, found]) => {
        if (held !== token) return false;
        if (!Array.isArray(found)) return true;
        const route = routeOf(String(found[1]));
        return !(route?.policy === 'last' && route.level === level && route.key === key);
      },
      // Only a key no run holds is released: a run of another key ends by itself.
      repair: ([, found]) => (level !== null && key !== null && !Array.isArray(found) ? { action: 'release', args: [String(level), key, token] } : null),
    });
  }
}

/** Each key in line has a waiting message (or a run), and is there once. */
function checkLines(scan: PartitionScan): void {
  for (const level of LEVELS) {
    for (const [key, times] of scan.order[level]) {
      const probes: Probe[] = [['inLine', String(level), key], hget(`L${level}:last`, key), hget('running', field(level, key))];
      if (times > 1) {
        scan.suspect({
          code: 'LAST_IN_LINE_TWICE',
          message: `key ${shown(key)} is ${times} times in ${scan.store.keys.order(level)}`,
          keys: [key],
          probes,
          holds: ([inLine]) => Number(inLine) > 1,
          repair: () => ({ action: 'dedupeLine', args: [String(level), key] }),
        });
      }
      if (!scan.waitingLast[level].has(key) && !scan.running.has(field(level, key))) {
        scan.suspect({
          code: 'ORDER_WITHOUT_PAYLOAD',
          message: `key ${shown(key)} is in ${scan.store.keys.order(level)} with no message waiting in ${scan.store.keys.queue(level, 'last')} and no run`,
          keys: [key],
          probes,
          holds: ([inLine, payload, token]) => Number(inLine) > 0 && payload === null && token === null,
          repair: () => ({ action: 'unline', args: [String(level), key] }),
        });
      }
    }
  }
}

/** Each newest mark points to a message of that key that waits, runs, is delayed or is dead. */
function checkNewest(scan: PartitionScan): void {
  const alive = new Set(['last', 'run', 'delayed', 'dead']);
  for (const level of LEVELS) {
    for (const [key, id] of scan.newest[level]) {
      const at = scan.seen.get(id);
      if (at && alive.has(at.place.kind) && at.route?.policy === 'last' && at.route.level === level && at.route.key === key) continue;
      scan.suspect({
        code: 'NEWEST_DANGLING',
        message: `${scan.store.keys.newest(level)} says job ${id} is the newest of key ${shown(key)}, but ${at ? `that job is in ${describePlace(at.place, scan.tag)}${at.route ? (at.route.key === key ? '' : ' with another key') : ', its payload unreadable'}` : 'that job is nowhere'}`,
        ids: [id],
        keys: [key],
        probes: [hget(`L${level}:last:newest`, key), ['newestAlive', String(level), key, id]],
        holds: ([mark, where]) => mark === id && where === null,
        repair: () => ({ action: 'dropNewest', args: [String(level), key, id] }),
      });
    }
  }
}

/** After the jobs were read: the held keys, the lines and the newest marks. */
export function checkKeys(scan: PartitionScan): void {
  checkHeldKeys(scan);
  checkLines(scan);
  checkNewest(scan);
}
