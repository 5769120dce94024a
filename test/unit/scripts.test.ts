// The scripts say what they use, and the loader holds them to it: the keys each is sent (its
// `-- KEYS:` line), the helpers it runs with (`-- USES:`), the reply codes it returns. These run
// without Redis: they build every script as the loader does, and feed it wrong declarations.
import { readdirSync } from 'node:fs';
import { buildScript, keyNamesOf, loadScripts, scriptsDir, type ScriptName } from '../../shared/store/scripts';
import { keyNamed, keysFor } from '../../shared/store/keys';
import { REPLY_CODES } from '../../shared/store/replies';

const SCRIPTS: ScriptName[] = [
  'enqueue',
  'claimJobs',
  'finishJobs',
  'failJob',
  'promoteDue',
  'requeueWorker',
  'requeueDead',
  'renewLease',
  'expiredWorkers',
  'queueGauges',
  'wakeWorkers',
  'lookupJob',
  'deleteJob',
  'pauseLevel',
  'purgeDead',
  'deleteDead',
  'pruneDone',
  'pruneLimiters',
  'checkState',
  'setGroupLimits',
];

test('every script file loads, and every script the code names has a file', () => {
  const loaded = loadScripts();
  const files = readdirSync(scriptsDir())
    .filter((f) => f.endsWith('.lua'))
    .map((f) => f.slice(0, -4));
  expect([...loaded.keys()].sort()).toEqual([...files].sort());
  expect([...SCRIPTS].sort()).toEqual([...files].sort());
});

test("each script's keys name real keys, once each, and none is the common prefix of old", () => {
  const keys = keysFor('sy', 3);
  for (const name of SCRIPTS) {
    const names = keyNamesOf(name);
    expect([name, new Set(names).size]).toEqual([name, names.length]);
    for (const key of names) expect(keyNamed(keys, key, 'w-1').startsWith('{sy:3}:')).toBe(true);
  }
  // The lease thread's renewal is sent its worker's two keys, not the whole layout.
  expect(keyNamesOf('renewLease')).toEqual(['workers', 'worker']);
  expect(keyNamesOf('pruneDone')).toEqual(['jobs', 'done']);
  expect(keyNamesOf('expiredWorkers')).toEqual(['workers']);
  expect(() => keyNamed(keys, 'L3:execute')).toThrow(/no key is named/);
  expect(() => keyNamed(keys, 'worker')).toThrow(/worker id is needed/);
});

test('a built script refers to KEYS only by position, defines each helper once, after the helpers it calls', () => {
  for (const [name, script] of loadScripts()) {
    expect([name, /\bK(\.|\[)/.test(script.lua.replace(/--.*$/gm, ''))]).toEqual([name, false]);
    const positions = script.helpers.map((h) => script.lua.indexOf(`local function ${h}(`));
    for (const [i, at] of positions.entries()) {
      expect([name, script.helpers[i], at >= 0]).toEqual([name, script.helpers[i], true]);
      expect(script.lua.lastIndexOf(`local function ${script.helpers[i]}(`)).toBe(at);
    }
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    const used = [...script.lua.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
    expect([name, new Set(used).size]).toEqual([name, script.keys.length]);
    expect(Math.max(0, ...used)).toBe(script.keys.length);
  }
});

test('every reply code of replies.ts is returned by its script', () => {
  const loaded = loadScripts();
  for (const script of Object.keys(REPLY_CODES)) expect([script, loaded.has(script as ScriptName)]).toEqual([script, true]);
});

describe('the loader refuses a script whose declarations are wrong', () => {
  const helpers = new Map([
    ['bump', "-- USES:\nlocal function bump(n)\n  return redis.call('INCRBY', K.runs, n)\nend\n"],
    ['twice', '-- USES: bump\nlocal function twice()\n  bump(1)\n  return bump(1)\nend\n'],
  ]);
  const build = (text: string, name = 'probe'): unknown => buildScript(name, text, helpers);

  test('a well-declared script builds, with its helpers in order and KEYS written in', () => {
    const script = buildScript(
      'probe',
      "#!lua flags=allow-oom\n-- KEYS: stats runs\n-- USES: twice\nredis.call('HSET', K.stats, 'a', 1)\nreturn twice()\n",
      helpers,
    );
    expect(script.keys).toEqual(['stats', 'runs']);
    expect(script.helpers).toEqual(['bump', 'twice']);
    expect(script.lua.startsWith('#!lua flags=allow-oom\n')).toBe(true);
    expect(script.lua).toContain("redis.call('INCRBY', KEYS[2], n)");
    expect(script.lua).toContain("redis.call('HSET', KEYS[1], 'a', 1)");
  });
  test("a level's key chosen at run time names both levels' keys, and is read without a helper", () => {
    const script = buildScript(
      'probe',
      "-- KEYS: L1:last L2:last wake:L1 wake:L2\n-- USES:\nlocal level = tonumber(ARGV[1])\nredis.call('LPUSH', K['wake:L' .. level], '1')\nreturn redis.call('HLEN', K['L' .. tonumber(ARGV[1]) .. ':last'])\n",
      helpers,
    );
    expect(script.lua).toContain("redis.call('LPUSH', (level == 1 and KEYS[3] or KEYS[4]), '1')");
    expect(script.lua).toContain("redis.call('HLEN', (tonumber(ARGV[1]) == 1 and KEYS[1] or KEYS[2]))");
    expect(() => build("-- KEYS: L1:last\n-- USES:\nreturn redis.call('HLEN', K['L' .. level .. ':last'])\n")).toThrow(
      /declares KEYS: L1:last but refers to L1:last L2:last/,
    );
  });
  test('a key used but not declared', () => {
    expect(() => build("-- KEYS: stats\n-- USES:\nreturn redis.call('GET', K.jobs)\n")).toThrow(/declares KEYS: stats but refers to jobs/);
  });
  test("a key declared but not used (a helper's keys count as the script's)", () => {
    expect(() => build('-- KEYS: stats runs done\n-- USES: bump\nreturn bump(1) + #K.stats\n')).toThrow(/declares KEYS: stats runs done but refers to/);
  });
  test('a helper called but not listed, or listed but not called', () => {
    expect(() => build('-- KEYS: runs\n-- USES:\nreturn bump(1)\n')).toThrow(/its header declares USES: \(none\) but calls bump/);
    expect(() => build('-- KEYS: runs\n-- USES: bump twice\nreturn bump(1)\n')).toThrow(/declares USES: bump twice but calls bump/);
    const wrongHelper = new Map([...helpers, ['twice', '-- USES:\nlocal function twice()\n  return bump(2)\nend\n']]);
    expect(() => buildScript('probe', '-- KEYS: runs\n-- USES: twice\nreturn twice()\n', wrongHelper)).toThrow(
      /helper twice declares USES: \(none\) but calls bump/,
    );
  });
  test('a key named by an expression, or KEYS used directly', () => {
    expect(() => build("-- KEYS: stats\n-- USES:\nlocal name = 'stats'\nreturn K[name] .. K.stats\n")).toThrow(/by an expression/);
    // A level form the loader does not expand (its level is not a name or tonumber(...)) is refused too.
    expect(() =>
      build("-- KEYS: L1:last L2:last\n-- USES:\nreturn redis.call('HLEN', K['L' .. math.max(1, 2) .. ':last']) .. K['L1:last'] .. K['L2:last']\n"),
    ).toThrow(/by an expression/);
    expect(() => build("-- KEYS: stats\n-- USES:\nreturn redis.call('GET', KEYS[1]) .. K.stats\n")).toThrow(/uses KEYS\[\.\.\.\] directly/);
  });
  test('no header lines at all', () => {
    expect(() => build('return 1\n')).toThrow(/has no "-- USES:" line/);
    expect(() => build('-- USES:\nreturn 1\n')).toThrow(/has no "-- KEYS:" line/);
  });
  test('a reply code it does not define, or one it never returns', () => {
    expect(() => build('-- KEYS:\n-- USES:\nreturn CODE.nope\n', 'requeueDead')).toThrow(/returns CODE.nope, which replies.ts does not define/);
    expect(() => build('-- KEYS:\n-- USES:\nreturn CODE.requeued\n', 'requeueDead')).toThrow(/never returns CODE.unknown, CODE.superseded/);
    const ok = buildScript(
      'requeueDead',
      '-- KEYS:\n-- USES:\nif ARGV[1] then return CODE.unknown end\nif ARGV[2] then return CODE.requeued end\nreturn CODE.superseded\n',
      helpers,
    );
    expect(ok.lua).toContain('return 0 end');
  });
});
