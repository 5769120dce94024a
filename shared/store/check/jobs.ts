// Invariants 1, 5 and 8 (docs/design.md, "Invariants the checker verifies"): every job sits in
// one place, its payload is what the scripts can read and agrees with that place, the lookup
// index says where it is, every index entry points to a job that is there, and every finished
// job kept for lookup has its entry. The level's own places are read here (checkJobs), the
// groups' by group-queues.ts, then the index and the finished jobs (checkIndex), once every
// place was read.
import type { Level } from '../../levels';
import { deadPayloadOf } from '../format/dead-entry';
import { INDEX_KEEPER, readIndexEntry } from '../format/index-entry';
import { jobIdOf, routeOf } from '../format/job';
import { holdsProbe, idAtProbe, indexChunk, readPayload, type Found } from './found';
import { isJson, shown, type Bytes } from './payload';
import { placeOfEntry, type Place } from './place';
import { entriesOf, hashChunks, listChunks, zsetChunks } from './read';
import type { PartitionScan } from './scan';
import { checkRunHoldsKey, checkWaitingLast, levelScope } from './keys';
import { groupOfPayload } from './groups';

const LEVELS: readonly Level[] = [1, 2];

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
        if (route) checkWaitingLast(scan, levelScope(scan, level), key, route.id);
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

/** Reads every place a job can be outside the groups' queues. */
export async function checkJobs(scan: PartitionScan): Promise<void> {
  await readQueues(scan);
  await readLast(scan);
  await readRuns(scan);
  await readDelayed(scan);
  await readDead(scan);
}

/** After every place was read (the groups' too): the finished jobs, then the index. */
export async function checkIndex(scan: PartitionScan): Promise<void> {
  await readDone(scan);
  await readIndex(scan);
}
