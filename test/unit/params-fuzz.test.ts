// Input.params fuzzed (docs/protocol.md, section 2): every field with lone surrogates, every
// Unicode class, extreme and non-finite numbers, odd types. parseParams either refuses with a
// 400 whose message starts with the offending field, or returns a request whose every string is
// well-formed and every number is a whole number of milliseconds within its documented range.
import fc from 'fast-check';
import { isCommonShape, JOB_ID_PATTERN, parseParams, parseParamsWithZod, RANGES, type CallRequest } from '../../shared/call/params';
import { SwitchyardError } from '../../shared/call/errors';

const LIMITS = { maxParamsBytes: 1 << 20, maxBodyBytes: 1 << 19 };
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** Text from every Unicode class: lone surrogates of both halves, pairs, controls, noncharacters, combining marks. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({
    unit: fc.constantFrom(
      '\ud800',
      '\udbff',
      '\udc00',
      '\udfff',
      '\u0000',
      '\u001f',
      '\u007f',
      '\u00a0',
      '\u200b',
      '\ufeff',
      '\uffff',
      '\u0301',
      'a',
      '/',
      '%',
      '?',
      '#',
      ' ',
    ),
    maxLength: 10,
  }),
  fc.constantFrom('k\ud800', '\udc00k', '\ud83d\ude00', '\ud83d', 'é', 'e\u0301', '\u2028', '%ZZ', '%ED%A0%80'),
);
/** Numbers at every edge: non-finite ones cannot come out of JSON.parse except Infinity from 1e999, written as text below. */
const edgeNumber = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    1e-320,
    5e-324,
    0.0004,
    0.0005,
    0.001,
    1,
    2 ** 53 + 1,
    2 ** 31,
    1e18,
    1e21,
    1e306,
    1e308,
    -1,
    -1e308,
    86_400,
    86_400.0004,
    2_592_000,
    2_592_001,
    3600,
    1000,
    1001,
    0.5,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);
const oddValue = fc.oneof(anyText, edgeNumber, fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}), fc.array(fc.integer(), { maxLength: 2 }));
/** A value for a field: mostly of its own type at its edges, sometimes anything at all. */
const numberish = fc.oneof({ weight: 4, arbitrary: edgeNumber }, { weight: 1, arbitrary: oddValue }, { weight: 1, arbitrary: fc.constant('1e999') });

const FIELDS = {
  url: fc.oneof(
    anyText.map((t) => `/${t}`),
    anyText,
    oddValue,
  ),
  method: fc.oneof(fc.constantFrom('GET', 'post', 'PuT'), anyText, oddValue),
  headers: fc.oneof(fc.dictionary(anyText, fc.oneof(anyText, oddValue), { maxKeys: 3 }), oddValue),
  content: fc.oneof(fc.jsonValue(), anyText, oddValue),
  reply: fc.oneof(fc.boolean(), oddValue),
  timeout: numberish,
  'queue_detail.level': fc.oneof(fc.constantFrom(1, 2), numberish),
  'queue_detail.limit_policy': fc.oneof(fc.constantFrom('execute', 'last', 'discard'), anyText, oddValue),
  'queue_detail.key': fc.oneof(anyText, oddValue),
  'queue_detail.id': fc.oneof(fc.stringMatching(JOB_ID_PATTERN), anyText, oddValue),
  'queue_detail.ttl': numberish,
  'queue_detail.attempts': numberish,
  'queue_detail.backoff': numberish,
  'queue_detail.job_timeout': numberish,
  'queue_detail.delay': numberish,
} as const;
type Field = keyof typeof FIELDS;

/** Params as JSON text with `field` set to `value`; the string '1e999' stands for the number literal JSON.parse reads as Infinity. */
function paramsWith(field: Field, value: unknown, reply: boolean): string {
  const params: Record<string, unknown> = { url: '/users/1', method: 'POST', reply, queue_detail: { level: 1, limit_policy: 'last' } };
  const [head, tail] = field.split('.');
  if (tail) (params.queue_detail as Record<string, unknown>)[tail] = value;
  else params[head] = value;
  return JSON.stringify(params).replace(/"1e999"/g, '1e999');
}

/** Durations in ms and counts: each a whole number within its documented range. */
function expectInRange(request: CallRequest): void {
  const within = (value: number | undefined, range: { min: number; max: number }, scale: number): void => {
    if (value === undefined) return;
    expect(Number.isSafeInteger(value)).toBe(true);
    expect(Object.is(value, -0)).toBe(false);
    expect(value).toBeGreaterThanOrEqual(Math.max(1, range.min * scale));
    expect(value).toBeLessThanOrEqual(range.max * scale);
  };
  within(request.timeoutMs, { min: RANGES.timeout.min, max: Math.max(RANGES.timeout.max, RANGES.job_timeout.max) }, 1000);
  const q = request.queue;
  if (!q) return;
  expect([1, 2]).toContain(q.level);
  within(q.ttlMs, RANGES.ttl, 1000);
  within(q.attempts, RANGES.attempts, 1);
  within(q.backoffMs, RANGES.backoff, 1000);
  within(q.delayMs, RANGES.delay, 1000);
  for (const text of [q.key, q.id ?? 'x']) expect(isWellFormed(text)).toBe(true);
  if (q.id !== undefined) expect(q.id).toMatch(JOB_ID_PATTERN);
}

function expectWellFormedStrings(request: CallRequest): void {
  for (const text of [request.url, request.method, ...Object.keys(request.headers), ...Object.values(request.headers)]) {
    expect(isWellFormed(text)).toBe(true);
  }
}

/** parseParams(text): a 400 naming `field` (or the params as a whole), else a request within every range. */
function check(text: string, fields: readonly string[]): void {
  let request: CallRequest;
  try {
    request = parseParams(text, LIMITS);
  } catch (err) {
    expect(err).toBeInstanceOf(SwitchyardError);
    const e = err as SwitchyardError;
    expect(e.status).toBe(400);
    const named = fields.some((f) => e.message.startsWith(`${f}: `) || e.message.startsWith(`${f}[`) || e.message.startsWith(`${f}.`));
    expect([named, e.message, fields]).toEqual([true, e.message, fields]);
    expect(isWellFormed(e.message)).toBe(true);
    return;
  }
  expectWellFormedStrings(request);
  expectInRange(request);
}

let tried = 0;
afterAll(() => process.stderr.write(`[params-fuzz] ${tried} params tried\n`));

test('one field at a time, sync and async: refused naming that field, or accepted within every range', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...(Object.keys(FIELDS) as Field[])).chain((field) => fc.tuple(fc.constant(field), FIELDS[field], fc.boolean())),
      ([field, value, reply]) => {
        tried++;
        check(paramsWith(field, value, reply), [field]);
      },
    ),
    { numRuns: 6000 },
  );
});

test('every field at once, any type: a 400 naming some field, or a request within every range', () => {
  const names = ['params', 'url', 'method', 'headers', 'content', 'reply', 'timeout', 'queue_detail'];
  fc.assert(
    fc.property(fc.record(FIELDS, { requiredKeys: [] }), fc.boolean(), (values, reply) => {
      tried++;
      const params: Record<string, unknown> = { reply };
      const queueDetail: Record<string, unknown> = {};
      for (const [field, value] of Object.entries(values)) {
        const [head, tail] = field.split('.');
        if (tail) queueDetail[tail] = value;
        else params[head] = value;
      }
      if (Object.keys(queueDetail).length > 0) params.queue_detail = queueDetail;
      check(JSON.stringify(params).replace(/"1e999"/g, '1e999'), names);
    }),
    { numRuns: 3000 },
  );
});

test('the numbers of the issue: Infinity, 1e18, 1e306, tiny and negative zero are refused or stored as whole milliseconds', () => {
  const asyncWith = (detail: string): string => `{"url":"/x","method":"POST","reply":false,"queue_detail":{"level":1,"limit_policy":"execute",${detail}}}`;
  for (const ttl of ['1e999', '1e18', '1e306', '1e308', '-1e999', '1e-320', '0.0004', '2592000.5'])
    expect(() => parseParams(asyncWith(`"ttl":${ttl}`), LIMITS)).toThrow(/^queue_detail\.ttl: /);
  expect(parseParams(asyncWith('"ttl":2592000'), LIMITS).queue!.ttlMs).toBe(2_592_000_000);
  expect(parseParams(asyncWith('"ttl":0.0015'), LIMITS).queue!.ttlMs).toBe(2);
  for (const field of ['timeout', 'queue_detail.backoff', 'queue_detail.job_timeout', 'queue_detail.delay', 'queue_detail.attempts']) {
    for (const bad of ['1e999', '-1e999', '1e308']) {
      const text = field.startsWith('queue_detail.')
        ? asyncWith(`"${field.slice(13)}":${bad}`)
        : `{"url":"/x","method":"POST","reply":false,"${field}":${bad},"queue_detail":{"level":1,"limit_policy":"execute"}}`;
      expect(() => parseParams(text, LIMITS)).toThrow(new RegExp(`^${field.replace('.', '\\.')}: `));
    }
  }
  expect(() => parseParams(asyncWith('"attempts":9007199254740993'), LIMITS)).toThrow(/^queue_detail\.attempts: /);
  const delayed = parseParams(asyncWith('"delay":-0'), LIMITS);
  expect(delayed.queue!.delayMs).toBeUndefined();
  expect(parseParams(asyncWith('"delay":1e-320'), LIMITS).queue!.delayMs).toBeUndefined();
});

test('lone surrogates are refused in the key, url, header names and values, and the id; content keeps them', () => {
  const base = { url: '/x', method: 'POST', reply: false, queue_detail: { level: 1, limit_policy: 'last' } };
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, queue_detail: { ...base.queue_detail, key: 'k\ud800' } }, /^queue_detail\.key: contains a lone UTF-16 surrogate/],
    [{ ...base, url: '/x\udc00' }, /^url: contains a lone UTF-16 surrogate/],
    [{ ...base, headers: { 'x-a': 'v\ud800' } }, /^headers\["x-a"\]: contains a lone UTF-16 surrogate/],
    [{ ...base, headers: { 'x-\ud800': 'v' } }, /^headers\["x-\\ud800"\]: header names are HTTP tokens/],
    [{ ...base, method: 'G\ud800' }, /^method: /],
    [{ ...base, queue_detail: { ...base.queue_detail, id: 'a\ud800' } }, /^queue_detail\.id: /],
  ];
  for (const [params, message] of cases) expect(() => parseParams(JSON.stringify(params), LIMITS)).toThrow(message);
  const kept = parseParams(JSON.stringify({ ...base, content: { 'k\ud800': 'v\udfff' } }), LIMITS);
  expect(kept.content).toEqual({ 'k\ud800': 'v\udfff' });
});

test('queue_detail.id: letters, digits, "_" and "-", 1 to 100 of them, carried to the request', () => {
  const withId = (id: unknown): string => JSON.stringify({ url: '/x', method: 'POST', reply: false, queue_detail: { level: 1, limit_policy: 'execute', id } });
  expect(parseParams(withId('order-42_A'), LIMITS).queue!.id).toBe('order-42_A');
  expect(parseParams(withId('a'.repeat(100)), LIMITS).queue!.id).toBe('a'.repeat(100));
  for (const bad of ['', 'a'.repeat(101), 'a b', 'a:b', 'é', 42, null]) expect(() => parseParams(withId(bad), LIMITS)).toThrow(/^queue_detail\.id: /);
});

/** The outcome of a parse: the request, or the text of its error. */
function outcome(parse: (text: string, limits: typeof LIMITS) => CallRequest, text: string): { request: CallRequest } | { error: string } {
  try {
    return { request: parse(text, LIMITS) };
  } catch (err) {
    expect(err).toBeInstanceOf(SwitchyardError);
    return { error: (err as SwitchyardError).message };
  }
}

/** Mostly a value of the field's own valid kind, sometimes anything of `other`. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>): fc.Arbitrary<T | U> =>
  fc.oneof({ weight: 9, arbitrary: valid }, { weight: 1, arbitrary: other });
/** Seconds within a range of RANGES, or an edge or odd value. */
const seconds = (range: { min: number; max: number }) => mostly(fc.double({ min: range.min, max: range.max, noNaN: true }), numberish);

/** Params of the common shape, mostly valid: token header names, any content, every queue_detail field. */
const commonParams = fc.record(
  {
    url: mostly(
      fc.constantFrom('/users/1', '/users/42?verbose=1', '/', '/a%20b/é', `/${'u'.repeat(8191)}`),
      fc.oneof(FIELDS.url, fc.constant(`/${'u'.repeat(8192)}`)),
    ),
    method: mostly(fc.constantFrom('GET', 'post', 'PuT', 'DELETE', 'patch', 'M-SEARCH'), fc.oneof(FIELDS.method, fc.constant('GETGETGETGETGETGE'))),
    headers: mostly(fc.dictionary(mostly(fc.stringMatching(/^[a-zA-Z0-9-]{1,12}$/), anyText), mostly(anyText, oddValue), { maxKeys: 4 }), oddValue),
    content: fc.oneof(fc.jsonValue(), fc.json(), anyText),
    reply: mostly(fc.boolean(), oddValue),
    timeout: seconds(RANGES.timeout),
    queue_detail: mostly(
      fc.record(
        {
          level: mostly(fc.constantFrom(1, 2), numberish),
          limit_policy: mostly(fc.constantFrom('execute', 'last', 'discard'), FIELDS['queue_detail.limit_policy']),
          key: mostly(
            fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constant('k'.repeat(1024))),
            fc.oneof(FIELDS['queue_detail.key'], fc.constant('k'.repeat(1025))),
          ),
          id: mostly(fc.stringMatching(JOB_ID_PATTERN), FIELDS['queue_detail.id']),
          ttl: seconds(RANGES.ttl),
          attempts: mostly(fc.integer(RANGES.attempts), fc.oneof(numberish, fc.double({ min: 1, max: 1000, noNaN: true }))),
          backoff: seconds(RANGES.backoff),
          job_timeout: seconds(RANGES.job_timeout),
          delay: seconds(RANGES.delay),
          other: oddValue,
        },
        { requiredKeys: ['level', 'limit_policy'] },
      ),
      oddValue,
    ),
    other: oddValue,
  },
  { requiredKeys: ['url', 'method'] },
);

test('the fast path of the common shape and the schema give the same request, or the same error', () => {
  let common = 0;
  let runs = 0;
  const same = (text: string): void => {
    runs++;
    const json: unknown = (() => {
      try {
        return JSON.parse(text);
      } catch {
        return null;
      }
    })();
    if (json !== null && typeof json === 'object' && isCommonShape(json)) common++;
    expect(outcome(parseParams, text)).toStrictEqual(outcome(parseParamsWithZod, text));
  };
  fc.assert(
    fc.property(commonParams, (params) => same(JSON.stringify(params).replace(/"1e999"/g, '1e999'))),
    { numRuns: 6000 },
  );
  fc.assert(
    fc.property(
      fc.constantFrom(...(Object.keys(FIELDS) as Field[])).chain((field) => fc.tuple(fc.constant(field), FIELDS[field], fc.boolean())),
      ([field, value, reply]) => same(paramsWith(field, value, reply)),
    ),
    { numRuns: 4000 },
  );
  process.stderr.write(`[params-fuzz] fast path taken by ${common} of ${runs}\n`);
  // Neither only the schema nor only the fast path was tried.
  expect(common / runs).toBeGreaterThan(0.2);
  expect(common / runs).toBeLessThan(0.9);
});
