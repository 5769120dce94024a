// Tenants (docs/design.md, "Tenants"): a group's name, and its limits as flags, the run-time
// overrides in `{p}:groups:limits` and the claim's arguments write them.

/** 1–64 ASCII characters with no quote, backslash, space or `*`: the same bytes in JSON, key names and redis-cli. */
export const GROUP_NAME = /^[A-Za-z0-9_.:@/+=-]{1,64}$/;
export const GROUP_NAME_RULE = '1–64 characters of A–Z a–z 0–9 _ . : @ / + = -';

export function isGroupName(value: unknown): value is string {
  return typeof value === 'string' && GROUP_NAME.test(value);
}

/** A rate limit: `rate` runs per second (a fraction for per-minute or per-hour limits). */
const UNIT_SECONDS: Record<string, number> = { s: 1, sec: 1, m: 60, min: 60, h: 3600 };

/**
 * Parses `100/s`, `30/m`, `5/h` (or a bare number, per second) into runs per second; throws
 * with the reason for anything else. `0` (or `off`) means no limit.
 */
export function parseRate(text: string): number {
  const t = text.trim();
  if (t === 'off' || t === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(?:\/(s|sec|m|min|h))?$/.exec(t);
  if (!m) throw new Error(`a rate is N/s, N/m or N/h (got ${JSON.stringify(text)})`);
  const perSecond = Number(m[1]) / UNIT_SECONDS[m[2] ?? 's'];
  if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new Error(`a rate must be above 0 (got ${JSON.stringify(text)})`);
  return perSecond;
}

/** How a rate in runs per second is shown: `20/s`, or `30/m` when under one per second. */
export function formatRate(perSecond: number): string {
  if (!(perSecond > 0)) return 'off';
  if (perSecond >= 1) return `${Number(perSecond.toFixed(3))}/s`;
  if (perSecond * 60 >= 1) return `${Number((perSecond * 60).toFixed(3))}/m`;
  return `${Number((perSecond * 3600).toFixed(3))}/h`;
}

/** A group's limits: undefined parts fall back to the workers' flags; 0 means none. */
export interface GroupLimits {
  concurrency?: number;
  /** Runs per second. */
  rate?: number;
}

/** The value of a `{p}:groups:limits` field: `<concurrency>:<rate per second>`, either part empty. */
export function encodeLimits(limits: GroupLimits): string {
  return `${limits.concurrency ?? ''}:${limits.rate ?? ''}`;
}

export function decodeLimits(value: string): GroupLimits {
  const [c, r] = value.split(':');
  const out: GroupLimits = {};
  if (c !== undefined && c !== '' && Number.isFinite(Number(c))) out.concurrency = Number(c);
  if (r !== undefined && r !== '' && Number.isFinite(Number(r))) out.rate = Number(r);
  return out;
}
