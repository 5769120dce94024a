// The clock the wake-up benchmark stamps with, in the client and in the worker processes.
/**
 * Milliseconds on CLOCK_MONOTONIC, which every process of the machine shares: stamps taken in
 * two processes can be subtracted. (performance.timeOrigin + performance.now() cannot: each
 * process fixes its own timeOrigin at start-up, and two processes were seen 4 ms apart.)
 */
export function machineClockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
