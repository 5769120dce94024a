// Where a deployment's partitions live on a Cluster: the tags chosen against a slot map, and
// what `{prefix}:partitions` holds (the count alone, as stored before tags existed, or with them).
import calculateSlot from 'cluster-key-slot';
import { chooseTags, defaultTags, formatStored, mastersBySlot, parseStored, storedCount, tagsOf } from '../../shared/store/placement';

// The slot map of a fresh 3-master local Cluster (redis-cli --cluster create): 0-5460, 5461-10922, 10923-16383.
const threeMasters = mastersBySlot([
  [0, 5460, ['127.0.0.1', 7000]],
  [5461, 10922, ['127.0.0.1', 7001]],
  [10923, 16383, ['127.0.0.1', 7002]],
]);

test("the default prefix's {sy:0} and {sy:1} share a master: the chosen tags put each partition on its own", () => {
  expect(defaultTags('sy', 3).map((t) => threeMasters[calculateSlot(t)])).toEqual(['127.0.0.1:7000', '127.0.0.1:7000', '127.0.0.1:7001']);
  const tags = chooseTags('sy', 3, threeMasters);
  expect(tags[0]).toBe('{sy:0}');
  expect(tags.every((t, p) => t === `{sy:${p}}` || t.startsWith(`{sy:${p}.`))).toBe(true);
  expect(new Set(tags.map((t) => threeMasters[calculateSlot(t)])).size).toBe(3);
});

test('more partitions than masters: as even as it gets (6 on 3 masters: 2 each); a prefix that spreads already keeps its tags', () => {
  const tags = chooseTags('sy', 6, threeMasters);
  const load = new Map<string, number>();
  for (const t of tags) load.set(threeMasters[calculateSlot(t)], (load.get(threeMasters[calculateSlot(t)]) ?? 0) + 1);
  expect([...load.values()]).toEqual([2, 2, 2]);
  for (let i = 0; ; i++) {
    const prefix = `spread-${i}`;
    if (new Set(defaultTags(prefix, 3).map((t) => threeMasters[calculateSlot(t)])).size < 3) continue;
    expect(chooseTags(prefix, 3, threeMasters)).toEqual(defaultTags(prefix, 3));
    break;
  }
});

test('the stored value: a count alone (as an earlier version stored it) keeps {prefix:p}; with tags, those', () => {
  expect(parseStored('3', 'sy', 'k')).toEqual({ partitions: 3 });
  expect(tagsOf(parseStored('3', 'sy', 'k'), 'sy')).toEqual(['{sy:0}', '{sy:1}', '{sy:2}']);
  const text = formatStored({ partitions: 3, tags: ['{sy:0}', '{sy:1.2}', '{sy:2}'] });
  expect(text).toBe('{"partitions":3,"tags":["{sy:0}","{sy:1.2}","{sy:2}"]}');
  expect(tagsOf(parseStored(text, 'sy', 'k'), 'sy')).toEqual(['{sy:0}', '{sy:1.2}', '{sy:2}']);
  expect(formatStored({ partitions: 2 })).toBe('2');
  expect(storedCount(text, 'sy')).toBe(3);
  expect(storedCount('junk', 'sy')).toBeUndefined();
});

test('a stored value that is neither is refused with one clear line naming the key', () => {
  expect(() => parseStored('x', 'sy', '{sy}:partitions')).toThrow('{sy}:partitions in Redis holds "x": neither a partition count nor a count with its tags');
  expect(() => parseStored('{"partitions":2,"tags":["{sy:0}"]}', 'sy', 'k')).toThrow('not one tag per partition');
  expect(() => parseStored('{"partitions":2,"tags":["{sy:0}","{other:1}"]}', 'sy', 'k')).toThrow('a tag that is not {sy:…}');
  expect(() => parseStored('{"partitions":2,"tags":["{sy:0}","{sy:0}"]}', 'sy', 'k')).toThrow('a tag used twice');
  expect(() => parseStored('0', 'sy', 'k')).toThrow('no partition count');
});
