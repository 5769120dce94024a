// Where a job can be, and the lookup index entry ({p}:jobs) that says so (the entry's format:
// shared/store/format/index-entry.ts). A named group's queues (docs/design.md, "Tenants") are
// places of their own, as the level's are.
import type { Level } from '../../levels';
import { readIndexEntry, writeIndexEntry } from '../format/index-entry';
import { shown, type Bytes } from './payload';

export type Place =
  | { kind: 'queue'; level: Level; policy: 'execute' | 'discard' }
  | { kind: 'last'; level: Level; key: Bytes }
  | { kind: 'groupQueue'; level: Level; group: string; policy: 'execute' | 'discard' }
  | { kind: 'groupLast'; level: Level; group: string; key: Bytes }
  | { kind: 'run'; worker: Bytes; token: string }
  | { kind: 'delayed'; due: number }
  | { kind: 'dead' }
  | { kind: 'done' };

/** The place an index entry points to; null for an entry of no known form. */
export function placeOfEntry(where: Bytes): Place | null {
  const entry = readIndexEntry(where);
  if (entry === null) return null;
  switch (entry.kind) {
    case 'waiting':
      if (entry.group !== undefined) {
        return entry.policy === 'last'
          ? { kind: 'groupLast', level: entry.level, group: entry.group, key: entry.key }
          : { kind: 'groupQueue', level: entry.level, group: entry.group, policy: entry.policy };
      }
      return entry.policy === 'last' ? { kind: 'last', level: entry.level, key: entry.key } : { kind: 'queue', level: entry.level, policy: entry.policy };
    case 'running':
      return { kind: 'run', token: entry.token, worker: entry.worker };
    case 'due':
      return { kind: 'delayed', due: entry.due };
    default:
      return { kind: entry.kind };
  }
}

/** The entry a job at this place has (a run's: with `since`, the time it started, unknown here: Redis now). */
export function entryFor(place: Place, now: number): Bytes {
  switch (place.kind) {
    case 'queue':
      return writeIndexEntry({ kind: 'waiting', level: place.level, policy: place.policy });
    case 'last':
      return writeIndexEntry({ kind: 'waiting', level: place.level, policy: 'last', key: place.key });
    case 'groupQueue':
      return writeIndexEntry({ kind: 'waiting', level: place.level, policy: place.policy, group: place.group });
    case 'groupLast':
      return writeIndexEntry({ kind: 'waiting', level: place.level, policy: 'last', key: place.key, group: place.group });
    case 'run':
      return writeIndexEntry({ kind: 'running', since: now, token: place.token, worker: place.worker });
    case 'delayed':
      return writeIndexEntry({ kind: 'due', due: place.due });
    case 'dead':
      return writeIndexEntry({ kind: 'dead' });
    case 'done':
      // The finished job's details are gone with it: what can be said is that it finished.
      return `d${now}:`;
  }
}

export function samePlace(a: Place, b: Place): boolean {
  switch (a.kind) {
    case 'queue':
      return b.kind === 'queue' && a.level === b.level && a.policy === b.policy;
    case 'last':
      return b.kind === 'last' && a.level === b.level && a.key === b.key;
    case 'groupQueue':
      return b.kind === 'groupQueue' && a.level === b.level && a.group === b.group && a.policy === b.policy;
    case 'groupLast':
      return b.kind === 'groupLast' && a.level === b.level && a.group === b.group && a.key === b.key;
    case 'run':
      return b.kind === 'run' && a.worker === b.worker && a.token === b.token;
    case 'delayed':
      return b.kind === 'delayed' && a.due === b.due;
    default:
      return a.kind === b.kind;
  }
}

/** Does the entry point to this place? */
export function entryMatches(where: Bytes | null, place: Place): boolean {
  const pointed = where === null ? null : placeOfEntry(where);
  return pointed !== null && samePlace(pointed, place);
}

/** For messages: where this is, in the words of docs/design.md's key table. */
export function describePlace(place: Place, tag: string): string {
  switch (place.kind) {
    case 'queue':
      return `${tag}:L${place.level}:${place.policy}`;
    case 'last':
      return `${tag}:L${place.level}:last field ${shown(place.key)}`;
    case 'groupQueue':
      return `${tag}:L${place.level}:g:${place.group}:${place.policy}`;
    case 'groupLast':
      return `${tag}:L${place.level}:g:${place.group}:last field ${shown(place.key)}`;
    case 'run':
      return `${tag}:worker:${place.worker} run ${place.token}`;
    case 'delayed':
      return `${tag}:delayed (due ${place.due})`;
    case 'dead':
      return `${tag}:dead`;
    case 'done':
      return `${tag}:done`;
  }
}

/**
 * A place as the checkState script's arguments name it: kind, then two words (see the
 * script's header); a named group's place has `<level>@<group>` for its first word.
 */
export function placeArgs(place: Place): [string, string, string] {
  switch (place.kind) {
    case 'queue':
      return ['queue', String(place.level), place.policy];
    case 'last':
      return ['last', String(place.level), place.key];
    case 'groupQueue':
      return ['groupQueue', `${place.level}@${place.group}`, place.policy];
    case 'groupLast':
      return ['groupLast', `${place.level}@${place.group}`, place.key];
    case 'run':
      return ['run', place.worker, place.token];
    case 'delayed':
      return ['delayed', String(place.due), ''];
    case 'dead':
      return ['dead', '', ''];
    case 'done':
      return ['done', '', ''];
  }
}
