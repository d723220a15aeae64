import type { BoundaryLogEntry } from "../gen/agentd/boundary/v1/boundary_pb.js";
import { formatClock } from "./format.js";

/** Rows kept in the page (the server's default ring size): older rows leave, counts stay. */
export const MAX_ROWS_KEPT = 10_000;
/** Hosts counted separately; past it, new hosts are counted under OTHER_HOSTS. */
export const MAX_HOSTS = 1_000;
/** The bucket of hosts past MAX_HOSTS. */
export const OTHER_HOSTS = "(other hosts)";

/** One decision as the feed shows it. */
export interface Row {
  seq: number;
  /** Formatted once, when the row arrives. */
  time: string;
  allowed: boolean;
  method: string;
  url: string;
  host: string;
  rule: string;
  process: string;
}

/** Allowed and denied requests of one host. */
export interface HostCount {
  host: string;
  allowed: number;
  denied: number;
}

/** The host (and port) of a URL: what follows the scheme up to the path; the URL itself without a scheme. */
function hostOf(url: string): string {
  const scheme = url.indexOf("://");
  if (scheme < 0) return url;
  const start = scheme + 3;
  let end = start;
  while (end < url.length && !"/?#".includes(url[end]!)) end++;
  const authority = url.slice(start, end);
  return authority.slice(authority.lastIndexOf("@") + 1).toLowerCase() || url;
}

/**
 * Every decision the page received: the newest MAX_ROWS_KEPT rows and
 * counts per host since the view opened (including the server's backlog).
 */
export class BoundaryStore {
  private rows: Row[] = [];
  private start = 0;
  private seq = 0;
  readonly hosts = new Map<string, HostCount>();
  allowed = 0;
  denied = 0;
  /** Logs the server's ring overwrote before this page read them. */
  skipped = 0;

  add(logs: BoundaryLogEntry[]): void {
    for (const log of logs) {
      const host = hostOf(log.url);
      this.rows.push({
        seq: this.seq++,
        time: formatClock(Number(log.timeUnixMs || log.receivedUnixMs)),
        allowed: log.allowed,
        method: log.method,
        url: log.url,
        host,
        rule: log.matchedRule,
        process: log.confinedProcessName,
      });
      if (log.allowed) this.allowed++;
      else this.denied++;
      this.count(host, log.allowed);
    }
    const excess = this.rows.length - this.start - MAX_ROWS_KEPT;
    if (excess > 0) this.start += excess;
    if (this.start > MAX_ROWS_KEPT) {
      this.rows = this.rows.slice(this.start);
      this.start = 0;
    }
  }

  /** Rows kept now. */
  get size(): number {
    return this.rows.length - this.start;
  }

  /** The newest `limit` rows that pass `keep`, newest first, and how many kept rows pass it. */
  newest(keep: (row: Row) => boolean, limit: number): { rows: Row[]; matching: number } {
    const rows: Row[] = [];
    let matching = 0;
    for (let i = this.rows.length - 1; i >= this.start; i--) {
      const row = this.rows[i]!;
      if (!keep(row)) continue;
      matching++;
      if (rows.length < limit) rows.push(row);
    }
    return { rows, matching };
  }

  /** Hosts by total requests, most first. */
  topHosts(limit: number): HostCount[] {
    return [...this.hosts.values()].sort((a, b) => b.allowed + b.denied - (a.allowed + a.denied)).slice(0, limit);
  }

  private count(host: string, allowed: boolean): void {
    let entry = this.hosts.get(host);
    if (!entry) {
      const key = this.hosts.size < MAX_HOSTS ? host : OTHER_HOSTS;
      entry = this.hosts.get(key) ?? { host: key, allowed: 0, denied: 0 };
      this.hosts.set(key, entry);
    }
    if (allowed) entry.allowed++;
    else entry.denied++;
  }
}
