/** Wall-clock nanoseconds at the moment the monotonic clock read zero. */
const EPOCH_OFFSET_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Wall-clock time in nanoseconds since the Unix epoch, with monotonic resolution. */
export function nowNs(): bigint {
  return EPOCH_OFFSET_NS + process.hrtime.bigint();
}

/**
 * A UTC timestamp as Go's time.RFC3339Nano prints it: nanosecond fraction
 * with trailing zeros removed, no fraction at all on a whole second.
 */
export function formatRfc3339Nano(ns: bigint): string {
  const seconds = ns / 1_000_000_000n;
  const whole = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
  return `${whole}${frac ? `.${frac}` : ""}Z`;
}
