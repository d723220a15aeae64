import type net from "node:net";

/**
 * How long a unix-socket connection must have been silent before a new
 * connection may take its slot at the cap (agentd's choice: a working client
 * sends or receives something well within a minute; an idle one is holding a
 * slot others need).
 */
export const IDLE_EVICTION_MS = 60_000;

/** What happened to a connection offered at `admit`. */
export type Admission = "accepted" | "evicted" | "refused";

/**
 * The connection slots of one unix-socket server: at most `max` open. At the
 * cap a newcomer takes the slot of the connection idle the longest, when that
 * one has been idle at least `idleEvictionMs` (it is closed); otherwise the
 * newcomer is refused. Idle clients therefore cannot lock others out.
 */
export class ConnectionSlots {
  /** Each open connection and when it last sent data (ms, `now`'s clock), least recent first. */
  private readonly lastActive = new Map<net.Socket, number>();

  constructor(
    private readonly max: number,
    private readonly idleEvictionMs = IDLE_EVICTION_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Open connections. */
  get size(): number {
    return this.lastActive.size;
  }

  /**
   * Takes `conn` into a slot, evicting (destroying) the longest-idle one when
   * full, or returns "refused" (the caller closes `conn`). Tracks activity and
   * frees the slot on close.
   */
  admit(conn: net.Socket): Admission {
    let admission: Admission = "accepted";
    if (this.lastActive.size >= this.max) {
      const victim = this.idlest();
      if (!victim) return "refused";
      this.lastActive.delete(victim);
      victim.destroy();
      admission = "evicted";
    }
    this.lastActive.set(conn, this.now());
    conn.on("data", () => {
      // Re-inserting keeps the map ordered by activity: the first entry is the idlest.
      if (this.lastActive.delete(conn)) this.lastActive.set(conn, this.now());
    });
    conn.once("close", () => this.lastActive.delete(conn));
    return admission;
  }

  /** The connection idle the longest, if it has been idle long enough to evict. */
  private idlest(): net.Socket | undefined {
    const first = this.lastActive.entries().next();
    if (first.done) return undefined;
    const [conn, at] = first.value;
    return this.now() - at >= this.idleEvictionMs ? conn : undefined;
  }
}
