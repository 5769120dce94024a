// The `grpc-timeout` header: 1 to 8 ASCII digits and a unit (grpc/doc/PROTOCOL-HTTP2.md):
// H hours, M minutes, S seconds, m milliseconds, u microseconds, n nanoseconds.

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/** The timeout in milliseconds, or NaN when the value is not a valid grpc-timeout. */
export function parseGrpcTimeout(value: string): number {
  const digits = value.length - 1;
  if (digits < 1 || digits > 8) return NaN;
  const perUnit = UNIT_MS[value[digits]];
  if (perUnit === undefined) return NaN;
  let n = 0;
  for (let i = 0; i < digits; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return n * perUnit;
}
