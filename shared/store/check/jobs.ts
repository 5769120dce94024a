// Invariants 1, 5 and 8 (docs/design.md, "Invariants the checker verifies"): every job sits in
// one place, its payload is what the scripts can read and agrees with that place, the lookup
// index says where it is, every index entry points to a job that is there, and every finished
// job kept for lookup has its entry.
import type { Level } from '../../levels';
import { deadPayloadOf } from '../format/dead-entry';
import { INDEX_KEEPER, readIndexEntry } from '../format/index-entry';
import { jobIdOf, routeOf, type Route } from '../format/job';
import { isJson, shown, type Bytes } from './payload';
import { describePlace, entryFor, entryMatches, placeArgs, placeOfEntry, samePlace, type Place } from './place';
import { entriesOf, hashChunks, listChunks, zsetChunks } from './read';
import type { PartitionScan } from './scan';
import type { Answer, Probe } from './state-script';
import { checkRunHoldsKey, checkWaitingLast } from './keys';
import { checkUngrouped, groupOfPayload, isGroupedEntry } from './groups';

const LEVELS: readonly Level[] = [1, 2];

/** A job found in a place: `holder` is what the place holds (the payload, or the whole dead entry). */
interface Found {
  id: string;
  place: Place;
  holder: Bytes;
  route: Route | null;
}

export const holdsProbe = (place: Place, value: Bytes): Probe => ['holds', ...placeArgs(place), value];
export const idAtProbe = (id: string, place: Place): Probe => ['idAt', id, ...placeArgs(place)];

/** Does a route (ours, or the script's answer) disagree with the queue the payload sits in? */
function misplaced(place: Place, level: number, policy: string, key: Bytes | undefined): boolean {
  if (place.kind === 'queue') return level !== place.level || policy !== place.policy;
  if (place.kind === 'last') return level !== place.level || policy !== 'last' || key !== place.key;
  return false;
}

/** Reads a payload as the scripts do; suspects it when they cannot, or when it sits in the wrong queue. */
function readPayload(scan: PartitionScan, place: Place, payload: Bytes): Route | null {
  const route = routeOf(payload);
  const where = describePlace(place, scan.tag);
  const id = route?.id ?? jobIdOf(payload);
  if (!route || !isJson(payload)) {
    scan.suspect({
      code: 'PAYLOAD_UNREADABLE',
      message: `${where}: ${route ? 'payload is not JSON' : 'payload has no routing prefix the scripts can read'}: ${shown(payload.slice(0, 120))}`,
      ids: id ? [id] : undefined,
      probes: [holdsProbe(place, payload), ['route', payload]],
      holds: ([held, luaRoute]) => Number(held) > 0 && (luaRoute === null || !isJson(payload)),
    });
  } else if (misplaced(place, route.level, route.policy, route.key)) {
    scan.suspect({
      code: 'PAYLOAD_MISPLACED',
      message: `${where}: job ${route.id} says level ${route.level}, ${route.policy}${route.key !== undefined ? ` key ${shown(route.key)}` : ''}`,
      ids: [route.id],
      probes: [holdsProbe(place, payload), ['route', payload]],
      holds: ([held, r]) => Number(held) > 0 && Array.isArray(r) && misplaced(place, Number(r[1]), String(r[2]), r[2] === 'last' ? String(r[3]) : undefined),
    });
  } else if (place.kind === 'queue' || place.kind === 'last') {
    checkUngrouped(scan, where, holdsProbe(place, payload), payload, route);
  }
  return route;
}

/** Records where each job is and compares with its index entry (read for the chunk at once). */
async function indexChunk(scan: PartitionScan, found: Found[]): Promise<void> {
  const entries = await entriesOf(
    scan.store.redis,
    scan.store.keys.jobs,
    found.map((f) => f.id),
  );
  found.forEach(({ id, place, holder, route }, i) => {
    const before = scan.seen.get(id);
    if (before) {
      const same = samePlace(before.place, place);
      scan.suspect({
        code: 'JOB_IN_TWO_PLACES',
        message: `job ${id} is in ${describePlace(before.place, scan.tag)}${same ? ' twice' : ` and in ${describePlace(place, scan.tag)}`}`,
        ids: [id],
        probes: [idAtProbe(id, before.place), idAtProbe(id, place)],
        holds: ([a, b]) => (same ? Number(a) >= 2 : Number(a) > 0 && Number(b) > 0),
      });
    } else {
      scan.seen.set(id, { place, route });
    }
    const where = entries[i];
    // A job the scripts cannot route may have no entry (they index what they can route), nor may
    // a message waiting in a list (enqueue indexes only a caller's id there: lookup and delete
    // read the lists), but an entry a job has must point to it (one left pointing to a run says
    // "running" for good).
    if (entryMatches(where, place) || (where === null && (!route || place.kind === 'queue'))) return;
    scan.suspect({
      code: where === null ? 'INDEX_MISSING' : 'INDEX_WRONG',
      message: `job ${id} is in ${describePlace(place, scan.tag)} but its index entry ${where === null ? 'is missing' : `says ${shown(where)}`}`,
      ids: [id],
      probes: [holdsProbe(place, holder), ['entry', id], ...(where === null ? [] : [['idAtEntry', id, where] as Probe])],
      holds: ([held, entry, atOld]: Answer[]) => Number(held) > 0 && entry === where && (where === null || Number(atOld) === 0),
      repair: () => ({ action: 'setEntry', args: [id, where ?? '', entryFor(place, scan.now), ...placeArgs(place), holder] }),
    });
  });
  await scan.confirmPending();
}

async function readQueues(scan: PartitionScan): Promise<void> {
  for (const level of LEVELS) {
    for (const policy of ['execute', 'discard'] as const) {
      const place: Place = { kind: 'queue', level, policy };
      for await (const chunk of listChunks(scan.store.redis, scan.store.keys.queue(level, policy))) {
        const found: Found[] = [];
        for (const payload of chunk) {
          scan.counts.waiting += 1;
          const route = readPayload(scan, place, payload);
          const id = route?.id ?? jobIdOf(payload);
          if (id) found.push({ id, place, holder: payload, route });
        }
        await indexChunk(scan, found);
      }
    }
  }
}

async function readLast(scan: PartitionScan): Promise<void> {
  for (const level of LEVELS) {
    for await (const chunk of hashChunks(scan.store.redis, scan.store.keys.queue(level, 'last'))) {
      const found: Found[] = [];
      for (const [key, payload] of chunk) {
        scan.counts.waiting += 1;
        scan.waitingLast[level].add(key);
        const place: Place = { kind: 'last', level, key };
        const route = readPayload(scan, place, payload);
        const id = route?.id ?? jobIdOf(payload);
        if (route) checkWaitingLast(scan, level, key, route.id);
        if (id) found.push({ id, place, holder: payload, route });
      }
      await indexChunk(scan, found);
    }
  }
}

async function readRuns(scan: PartitionScan): Promise<void> {
  for (const worker of scan.workerIds) {
    const hash = scan.store.keys.workerJobs(worker);
    for await (const chunk of hashChunks(scan.store.redis, hash)) {
      const found: Found[] = [];
      for (const [token, payload] of chunk) {
        scan.counts.running += 1;
        const place: Place = { kind: 'run', worker, token };
        if (!/^\d+$/.test(token)) {
          // Not a run any script made (no index entry can point to it): reported alone.
          scan.suspect({
            code: 'TOKEN_INVALID',
            message: `${hash} has the field ${shown(token)}, not a run token`,
            probes: [holdsProbe(place, payload)],
            holds: ([held]) => Number(held) > 0,
          });
          continue;
        }
        const route = readPayload(scan, place, payload);
        scan.runs.set(token, { worker, payload, route });
        scan.token(token, hash);
        // A grouped run's key is held under its group's name (groups.ts checks it).
        if (route?.policy === 'last' && groupOfPayload(payload) === undefined) checkRunHoldsKey(scan, place, payload, route);
        const id = route?.id ?? jobIdOf(payload);
        if (id) found.push({ id, place, holder: payload, route });
      }
      await indexChunk(scan, found);
    }
  }
}

async function readDelayed(scan: PartitionScan): Promise<void> {
  for await (const chunk of zsetChunks(scan.store.redis, scan.store.keys.delayed)) {
    const found: Found[] = [];
    for (const [payload, due] of chunk) {
      scan.counts.delayed += 1;
      const place: Place = { kind: 'delayed', due };
      const route = readPayload(scan, place, payload);
      if (route) scan.delayedByLevel[route.level] += 1;
      const id = route?.id ?? jobIdOf(payload);
      if (id) found.push({ id, place, holder: payload, route });
    }
    await indexChunk(scan, found);
  }
}

async function readDead(scan: PartitionScan): Promise<void> {
  const place: Place = { kind: 'dead' };
  for await (const chunk of listChunks(scan.store.redis, scan.store.keys.dead)) {
    const found: Found[] = [];
    for (const entry of chunk) {
      scan.counts.dead += 1;
      const payload = deadPayloadOf(entry);
      if (payload === null || !isJson(entry)) {
        scan.suspect({
          code: 'DEAD_ENTRY_MALFORMED',
          message: `${scan.store.keys.dead} holds ${shown(entry.slice(0, 120))}`,
          probes: [holdsProbe(place, entry)],
          holds: ([held]) => Number(held) > 0,
        });
        continue;
      }
      // A job no script can route is kept here on purpose (the scripts bury it): counted, not a problem.
      const route = routeOf(payload);
      if (!route) scan.counts.deadUnreadable += 1;
      const id = route?.id ?? jobIdOf(payload);
      if (id) found.push({ id, place, holder: entry, route });
    }
    await indexChunk(scan, found);
  }
}

const isDoneEntry = (where: Bytes | null | undefined): boolean => typeof where === 'string' && readIndexEntry(where)?.kind === 'done';

async function readDone(scan: PartitionScan): Promise<void> {
  for await (const chunk of zsetChunks(scan.store.redis, scan.store.keys.done)) {
    const ids = chunk.map(([id]) => id);
    const entries = await entriesOf(scan.store.redis, scan.store.keys.jobs, ids);
    ids.forEach((id, i) => {
      scan.counts.done += 1;
      scan.done.add(id);
      if (isDoneEntry(entries[i])) return;
      scan.suspect({
        code: 'DONE_UNINDEXED',
        message: `job ${id} is kept in ${scan.store.keys.done} but its index entry ${entries[i] === null ? 'is missing' : `says ${shown(entries[i]!)}`}`,
        ids: [id],
        probes: [idAtProbe(id, { kind: 'done' }), ['entry', id]],
        holds: ([kept, entry]) => Number(kept) > 0 && !(typeof entry === 'string' && isDoneEntry(entry)),
        repair: () => ({ action: 'undone', args: [id] }),
      });
    });
    await scan.confirmPending();
  }
}

/** Every index entry of a job found nowhere must point to something that is there. */
async function readIndex(scan: PartitionScan): Promise<void> {
  for await (const chunk of hashChunks(scan.store.redis, scan.store.keys.jobs)) {
    for (const [id, where] of chunk) {
      if (id === INDEX_KEEPER) continue;
      scan.counts.indexEntries += 1;
      if (isGroupedEntry(where)) {
        scan.groupedEntries.push([id, where]);
        continue;
      }
      const place = placeOfEntry(where);
      if (place?.kind === 'run') scan.token(place.token, `${scan.store.keys.jobs} ${id}`);
      if (scan.seen.has(id) || (place?.kind === 'done' && scan.done.has(id))) continue;
      scan.suspect({
        code: 'INDEX_DANGLING',
        message: `index entry of job ${id} says ${shown(where)}${place ? ', where no such job is' : ', a form no script writes'}`,
        ids: [id],
        probes: [
          ['entry', id],
          ['idAtEntry', id, where],
        ],
        holds: ([entry, there]) => entry === where && Number(there) === 0,
        repair: () => ({ action: 'dropEntry', args: [id, where] }),
      });
    }
    await scan.confirmPending();
  }
}

/** Reads every place a job can be, then the index and the finished jobs. */
export async function checkJobs(scan: PartitionScan): Promise<void> {
  await readQueues(scan);
  await readLast(scan);
  await readRuns(scan);
  await readDelayed(scan);
  await readDead(scan);
  await readDone(scan);
  await readIndex(scan);
}
