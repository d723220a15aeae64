const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/**
 * A Unix time (ms) as local HH:MM:SS, with the date when it is not today.
 * Formatted by hand: Intl formatting costs microseconds per call, too much
 * for a feed of thousands of rows a second.
 */
export function formatTime(ms: number): string {
  if (!ms) return "—";
  const d = new Date(ms);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const now = new Date();
  const today = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return today ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** A Unix time (ms) as local HH:MM:SS.mmm, for feeds where the order within a second matters. */
export function formatClock(ms: number): string {
  if (!ms) return "—";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A byte count in B, KiB or MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A duration in seconds as "42 s", "3 min" or "2 h". */
export function formatAge(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}
