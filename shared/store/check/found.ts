// A job found in a place (a level's queue or `last` hash, a group's, a run, the delayed set, the
// dead list): its payload read as the scripts read it, and its index entry compared with where
// it is (invariants 1 and 5, docs/design.md "Invariants the checker verifies"). jobs.ts feeds it
// the level's places, group-queues.ts the groups'.
import type { Route } from '../format/job';
import { routeOf, jobIdOf } from '../format/job';
import { groupOfPayload } from './groups';
import { isJson, shown, type Bytes } from './payload';
import { describePlace, entryFor, entryMatches, placeArgs, samePlace, type Place } from './place';
import { entriesOf } from './read';
import type { PartitionScan } from './scan';
import type { Answer, Probe } from './state-script';

/** A job found in a place: `holder` is what the place holds (the payload, or the whole dead entry). */
export interface Found {
  id: string;
  place: Place;
  holder: Bytes;
  route: Route | null;
}

export const holdsProbe = (place: Place, value: Bytes): Probe => ['holds', ...placeArgs(place), value];
export const idAtProbe = (id: string, place: Place): Probe => ['idAt', id, ...placeArgs(place)];

/** Does a route (ours, or the script's answer) disagree with the queue the payload sits in? */
function misplaced(place: Place, level: number, policy: string, key: Bytes | undefined): boolean {
  if (place.kind === 'queue' || place.kind === 'groupQueue') return level !== place.level || policy !== place.policy;
  if (place.kind === 'last' || place.kind === 'groupLast') return level !== place.level || policy !== 'last' || key !== place.key;
  return false;
}

/** The group a payload in this place must name (undefined: none); null where any group may be (runs, delayed, dead). */
function groupOfPlace(place: Place): string | undefined | null {
  if (place.kind === 'groupQueue' || place.kind === 'groupLast') return place.group;
  return place.kind === 'queue' || place.kind === 'last' ? undefined : null;
}

/**
 * Reads a payload as the scripts do; suspects it when they cannot, when it sits in another
 * group's queue (or a group's while naming none, or the level's while naming one: by the
 * scripts' groupOf), or when its level, policy or key disagree with the queue it sits in.
 */
export function readPayload(scan: PartitionScan, place: Place, payload: Bytes): Route | null {
  const route = routeOf(payload);
  const where = describePlace(place, scan.tag);
  const id = route?.id ?? jobIdOf(payload);
  const group = groupOfPlace(place);
  const named = groupOfPayload(payload);
  if (!route || !isJson(payload)) {
    scan.suspect({
      code: 'PAYLOAD_UNREADABLE',
      message: `${where}: ${route ? 'payload is not JSON' : 'payload has no routing prefix the scripts can read'}: ${shown(payload.slice(0, 120))}`,
      ids: id ? [id] : undefined,
      probes: [holdsProbe(place, payload), ['route', payload]],
      holds: ([held, luaRoute]) => Number(held) > 0 && (luaRoute === null || !isJson(payload)),
    });
  } else if (group !== null && named !== group) {
    scan.suspect({
      code: 'GROUP_PAYLOAD_MISPLACED',
      message:
        group === undefined
          ? `${where}: job ${route.id} of group ${named} waits in the level's own queue, not in its group's`
          : `${where}: job ${route.id} names ${named === undefined ? 'no group' : `group ${named}`}`,
      ids: [route.id],
      probes: [holdsProbe(place, payload), ['groupOf', payload]],
      holds: ([held, g]) => Number(held) > 0 && (g === null ? undefined : g) !== group,
    });
  } else if (misplaced(place, route.level, route.policy, route.key)) {
    scan.suspect({
      code: 'PAYLOAD_MISPLACED',
      message: `${where}: job ${route.id} says level ${route.level}, ${route.policy}${route.key !== undefined ? ` key ${shown(route.key)}` : ''}`,
      ids: [route.id],
      probes: [holdsProbe(place, payload), ['route', payload]],
      holds: ([held, r]) => Number(held) > 0 && Array.isArray(r) && misplaced(place, Number(r[1]), String(r[2]), r[2] === 'last' ? String(r[3]) : undefined),
    });
  }
  return route;
}

/** A message waiting in a list may have no index entry (enqueue writes one only for a caller's id: lookup and delete read the lists). */
const inList = (place: Place): boolean => place.kind === 'queue' || place.kind === 'groupQueue';

/** Records where each job is and compares with its index entry (read for the chunk at once). */
export async function indexChunk(scan: PartitionScan, found: Found[]): Promise<void> {
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
    // a message waiting in a list, but an entry a job has must point to it (one left pointing to
    // a run says "running" for good).
    if (entryMatches(where, place) || (where === null && (!route || inList(place)))) return;
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
