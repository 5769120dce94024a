// Where a job can be, and the lookup index entry ({p}:jobs) that says so. The entry forms are
// the scripts' (scripts/helpers/setWhere.lua):
//   w<level>:<policy>[\n<key>]   r<since>:<token>:<worker>   t<due>   x   d<finished>:…
import type { Level } from '../../levels';
import { shown, type Bytes } from './payload';

export type Place =
  | { kind: 'queue'; level: Level; policy: 'execute' | 'discard' }
  | { kind: 'last'; level: Level; key: Bytes }
  | { kind: 'run'; worker: Bytes; token: string }
  | { kind: 'delayed'; due: number }
  | { kind: 'dead' }
  | { kind: 'done' };

/** The place an index entry points to; null for an entry of no known form. */
export function placeOfEntry(where: Bytes): Place | null {
  let m = /^wL([12]):(execute|discard)$/.exec(where);
  if (m) return { kind: 'queue', level: Number(m[1]) as Level, policy: m[2] as 'execute' | 'discard' };
  m = /^wL([12]):last\n([\s\S]*)$/.exec(where);
  if (m) return { kind: 'last', level: Number(m[1]) as Level, key: m[2] };
  m = /^r\d+:(\d+):([\s\S]+)$/.exec(where);
  if (m) return { kind: 'run', token: m[1], worker: m[2] };
  m = /^t(\d+)$/.exec(where);
  if (m) return { kind: 'delayed', due: Number(m[1]) };
  if (where === 'x') return { kind: 'dead' };
  if (/^d\d+:/.test(where)) return { kind: 'done' };
  return null;
}

/** The entry a job at this place has (a run's: with `since`, the time it started, unknown here: Redis now). */
export function entryFor(place: Place, now: number): Bytes {
  switch (place.kind) {
    case 'queue':
      return `wL${place.level}:${place.policy}`;
    case 'last':
      return `wL${place.level}:last\n${place.key}`;
    case 'run':
      return `r${now}:${place.token}:${place.worker}`;
    case 'delayed':
      return `t${place.due}`;
    case 'dead':
      return 'x';
    case 'done':
      return `d${now}:`;
  }
}

export function samePlace(a: Place, b: Place): boolean {
  switch (a.kind) {
    case 'queue':
      return b.kind === 'queue' && a.level === b.level && a.policy === b.policy;
    case 'last':
      return b.kind === 'last' && a.level === b.level && a.key === b.key;
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
 * script's header).
 */
export function placeArgs(place: Place): [string, string, string] {
  switch (place.kind) {
    case 'queue':
      return ['queue', String(place.level), place.policy];
    case 'last':
      return ['last', String(place.level), place.key];
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
