const IEC_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/**
 * A byte count the way Go's humanize.IBytes prints it (Coder's size stubs):
 * `512 B`, `5.0 MiB` below ten units, `12 MiB` from ten.
 */
export function humanizeIBytes(bytes: number): string {
  if (bytes < 10) return `${bytes} B`;
  const e = Math.min(Math.floor(Math.log(bytes) / Math.log(1024)), IEC_UNITS.length - 1);
  const value = Math.floor((bytes / 1024 ** e) * 10 + 0.5) / 10;
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${IEC_UNITS[e]}`;
}
