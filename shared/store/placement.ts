// Where a deployment's partitions live: the hash tag of each, stored with the partition count in
// `{prefix}:partitions` so that every process uses the same ones (docs/design.md, "Partitions").
//
// On a Redis Cluster the process that creates a deployment of several partitions chooses the
// tags against the cluster's slot map, so that each partition lands on a master of its own
// (`{sy:0}`, and when that master is taken `{sy:0.1}`, `{sy:0.2}` …). Elsewhere, and for a
// deployment stored by an earlier version (the count alone), the tags are `{sy:0}` … `{sy:N-1}`.
import calculateSlot from 'cluster-key-slot';

/** What `{prefix}:partitions` holds: the count, and the tags when they are not the default ones. */
export interface StoredPartitions {
  partitions: number;
  tags?: string[];
}

/** The tag of partition p when none was chosen: `{prefix:p}` (`{prefix}` for a deployment of one). */
export function defaultTags(prefix: string, partitions: number): string[] {
  return partitions === 1 ? [`{${prefix}}`] : Array.from({ length: partitions }, (_, p) => `{${prefix}:${p}}`);
}

/** The stored text: the count alone (as before) or, with tags chosen, `{"partitions":N,"tags":[…]}`. */
export function formatStored(stored: StoredPartitions): string {
  return stored.tags ? JSON.stringify({ partitions: stored.partitions, tags: stored.tags }) : String(stored.partitions);
}

/** Reads the stored text; throws a clear error when it is neither a count nor a count with its tags. */
export function parseStored(text: string, prefix: string, key: string): StoredPartitions {
  if (/^[1-9]\d*$/.test(text)) return { partitions: Number(text) };
  const bad = (why: string): Error => new Error(`${key} in Redis holds ${JSON.stringify(text.slice(0, 80))}: ${why}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad('neither a partition count nor a count with its tags');
  }
  const { partitions, tags } = (value ?? {}) as { partitions?: unknown; tags?: unknown };
  if (typeof partitions !== 'number' || !Number.isInteger(partitions) || partitions < 1) throw bad('no partition count');
  if (!Array.isArray(tags) || tags.length !== partitions) throw bad(`not one tag per partition`);
  const ours = `{${prefix}:`;
  for (const tag of tags) {
    if (typeof tag !== 'string' || !tag.startsWith(ours) || !tag.endsWith('}') || tag.slice(1, -1).includes('}') || tag.slice(1, -1).includes('{'))
      throw bad(`a tag that is not ${ours}…}`);
  }
  if (new Set(tags).size !== tags.length) throw bad('a tag used twice');
  return { partitions, tags: tags as string[] };
}

/** The stored count, or undefined where nothing (readable) is stored. */
export function storedCount(text: string | null, prefix: string): number | undefined {
  try {
    return text === null ? undefined : parseStored(text, prefix, 'partitions').partitions;
  } catch {
    return undefined;
  }
}

/** The tags the stored value gives its partitions. */
export function tagsOf(stored: StoredPartitions, prefix: string): string[] {
  return stored.tags ?? defaultTags(prefix, stored.partitions);
}

/** A Cluster's slot map as CLUSTER SLOTS answers it: [from, to, [host, port, id?], …replicas]. */
export type SlotRanges = ReadonlyArray<readonly [number, number, readonly [string, number, string?, ...unknown[]], ...unknown[]]>;

/** The master ("host:port") of each slot, from CLUSTER SLOTS. */
export function mastersBySlot(ranges: SlotRanges): string[] {
  const bySlot: string[] = new Array<string>(16384).fill('');
  for (const [from, to, [host, port]] of ranges) for (let s = from; s <= to; s++) bySlot[s] = `${host}:${port}`;
  return bySlot;
}

/** How far the search for a tag goes before it takes the default one (with 3 masters about 3 tries are needed). */
const MAX_TRIES = 10_000;

/**
 * One tag per partition, each on a master that holds the fewest partitions so far (with at
 * least as many masters as partitions: each on its own). Partition p tries `{prefix:p}` first,
 * then `{prefix:p.1}`, `{prefix:p.2}` …
 */
export function chooseTags(prefix: string, partitions: number, masterOfSlot: readonly string[]): string[] {
  const masters = [...new Set(masterOfSlot.filter(Boolean))];
  const load = new Map(masters.map((m) => [m, 0]));
  const tags: string[] = [];
  for (let p = 0; p < partitions; p++) {
    const least = Math.min(...load.values());
    let chosen = `{${prefix}:${p}}`;
    for (let n = 0; n < MAX_TRIES; n++) {
      const tag = n === 0 ? `{${prefix}:${p}}` : `{${prefix}:${p}.${n}}`;
      if (load.get(masterOfSlot[calculateSlot(tag)]) === least) {
        chosen = tag;
        break;
      }
    }
    const master = masterOfSlot[calculateSlot(chosen)];
    load.set(master, (load.get(master) ?? 0) + 1);
    tags.push(chosen);
  }
  return tags;
}
