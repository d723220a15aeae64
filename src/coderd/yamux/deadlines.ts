import { performance } from "node:perf_hooks";

/**
 * Deadlines of one fixed length for many ids (streams awaiting an ACK or a
 * FIN), kept with one timer instead of one per id. Every id expires the same
 * time after it was added, so the first in the map is always the next due:
 * the timer only ever waits for that one. Times are monotonic, so a wall
 * clock step never expires a wait early.
 */
export class Deadlines {
  private readonly due = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;

  /** `expire` is called with each id still present `ms` after it was added. */
  constructor(
    private readonly ms: number,
    private readonly expire: (id: number) => void,
  ) {}

  /** Starts the wait for `id`. */
  add(id: number): void {
    // Re-added ids go to the end, so the map stays in due order.
    this.due.delete(id);
    this.due.set(id, performance.now() + this.ms);
    if (!this.timer) this.arm(this.ms);
  }

  /** Ends the wait for `id`, if there was one. */
  delete(id: number): void {
    this.due.delete(id);
  }

  /** Ends every wait. */
  clear(): void {
    this.due.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.check, ms);
    this.timer.unref();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    const now = performance.now();
    for (const [id, at] of this.due) {
      if (at > now) return this.arm(at - now);
      this.due.delete(id);
      this.expire(id);
    }
  };
}
