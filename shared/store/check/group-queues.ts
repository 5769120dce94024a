// The named groups' queues (docs/design.md, "Tenants"), read as the level's are: each job in a
// group's `execute`, `discard` or `last` is one more place a job can be (invariants 1 and 5:
// one place per id, its index entry pointing there, a payload naming that group, level, policy
// and key), and each group's `last` structures keep invariants 3 and 4 as the level's do (the
// same checks, keys.ts, on the group's hash, order list and newest marks).
//
// The groups are found by SCAN of `<tag>:L<n>:g:*` (a group's parked `last` key, or a newest
// mark alone, can exist while the group is not in its ring) and by the rings; each group is read
// a thousand entries at a time, and what is kept of its `last` structures (its keys in line,
// its marks) only while it is read.
import { isGroupName } from '../../groups';
import type { Level } from '../../levels';
import { jobIdOf } from '../format/job';
import { indexChunk, readPayload, type Found } from './found';
import { groupOfKey } from './groups';
import { checkLines, checkNewest, checkWaitingLast, type LastScope } from './keys';
import type { Bytes } from './payload';
import type { Place } from './place';
import { hashChunks, listChunks, readHash, scanKeys, zsetChunks } from './read';
import type { PartitionScan } from './scan';

const LEVELS: readonly Level[] = [1, 2];
/** Groups whose queue lengths are read per pipeline. */
const LENGTHS_BATCH = 200;

/** A group of a level found by SCAN or in the ring. */
export interface GroupLevel {
  inRing: boolean;
  /** execute, discard, last:order lengths and the `last` hash's size. */
  lengths: [number, number, number, number];
}

export interface GroupsRead {
  groups: Record<Level, Map<string, GroupLevel>>;
  /** Grouped messages found waiting per level. */
  waiting: Record<Level, number>;
}

/** Finds every group of each level and reads its queues; after the level's places, before the index. */
export async function readGroups(scan: PartitionScan): Promise<GroupsRead> {
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
  for (const level of LEVELS) {
    for (const group of groups[level].keys()) {
      if (!isGroupName(group)) continue;
      waiting[level] += await readGroup(scan, level, group);
    }
  }
  return { groups, waiting };
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

/** Reads one group's queues of a level; returns how many messages wait there. */
async function readGroup(scan: PartitionScan, level: Level, group: string): Promise<number> {
  const { redis, keys } = scan.store;
  let n = 0;
  /** A payload found in the group's queues: read, and its id kept for the index's check. */
  const one = (place: Place, payload: Bytes, found: Found[]): string | undefined => {
    n += 1;
    scan.counts.waiting += 1;
    const route = readPayload(scan, place, payload);
    const id = route?.id ?? jobIdOf(payload) ?? undefined;
    if (id) found.push({ id, place, holder: payload, route });
    return route?.id;
  };
  for (const policy of ['execute', 'discard'] as const) {
    const place: Place = { kind: 'groupQueue', level, group, policy };
    for await (const chunk of listChunks(redis, keys.groupQueue(level, group, policy))) {
      const found: Found[] = [];
      for (const payload of chunk) one(place, payload, found);
      await indexChunk(scan, found);
    }
  }
  // The `last` structures: the order list and the marks first (as readKeyState reads the level's), then what waits.
  const scope: LastScope = { level, group, order: new Map(), newest: await readHash(redis, keys.groupNewest(level, group)), waiting: new Set() };
  scan.counts.newestMarks += scope.newest.size;
  for await (const chunk of listChunks(redis, keys.groupOrder(level, group))) {
    for (const key of chunk) scope.order.set(key, (scope.order.get(key) ?? 0) + 1);
  }
  for await (const chunk of hashChunks(redis, keys.groupQueue(level, group, 'last'))) {
    const found: Found[] = [];
    for (const [key, payload] of chunk) {
      scope.waiting.add(key);
      const id = one({ kind: 'groupLast', level, group, key }, payload, found);
      if (id) checkWaitingLast(scan, scope, key, id);
    }
    await indexChunk(scan, found);
  }
  checkLines(scan, scope);
  checkNewest(scan, scope);
  await scan.confirmPending();
  return n;
}
