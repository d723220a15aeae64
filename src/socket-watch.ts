import fs from "node:fs";
import { errnoCode, errorText } from "./errors.js";
import type { Logger } from "./log.js";

/** How often a listening socket's file is checked; well inside the 5 s within which /readyz must notice. */
export const SOCKET_WATCH_INTERVAL_MS = 2_000;

/** What the watch found at the socket path. */
export type SocketFileState = "intact" | "missing" | "replaced";

/**
 * Watches the file of a unix socket agentd listens on: when it disappears or
 * is replaced by another file (compared by device and inode), `intact` turns
 * false, one line is logged, and a missing file is handed to `recreate` (the
 * owner listens again). A replaced file is someone else's: it is left alone
 * and checked again, and re-created once it is gone.
 */
export class SocketWatch {
  private identity: { dev: number; ino: number } | undefined;
  private state: SocketFileState = "intact";
  private timer: NodeJS.Timeout | undefined;
  private recreating = false;
  private recreateFailed = false;

  constructor(
    private readonly socketPath: string,
    private readonly flag: string,
    private readonly recreate: () => Promise<void>,
    private readonly log: Logger,
    private readonly intervalMs = SOCKET_WATCH_INTERVAL_MS,
  ) {}

  /** False once the socket file is gone or replaced, until agentd has re-created it. */
  get intact(): boolean {
    return this.state === "intact";
  }

  /** Records the file the owner just bound and starts checking it. */
  start(): void {
    this.adopt();
    this.timer ??= setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Checks now (the timer calls this); exposed so tests need not wait. */
  async check(): Promise<void> {
    if (this.recreating) return;
    const found = this.inspect();
    if (found !== this.state) this.report(found);
    this.state = found;
    if (found !== "missing") return;
    this.recreating = true;
    try {
      await this.recreate();
      this.adopt();
      this.state = "intact";
      this.recreateFailed = false;
      this.log.info({ path: this.socketPath }, "socket re-created");
    } catch (err) {
      // Logged once at error, then at debug on every retry, until it works again.
      this.log[this.recreateFailed ? "debug" : "error"]({ path: this.socketPath, err: errorText(err) }, "could not re-create the socket");
      this.recreateFailed = true;
    } finally {
      this.recreating = false;
    }
  }

  private adopt(): void {
    const stat = fs.lstatSync(this.socketPath);
    this.identity = { dev: stat.dev, ino: stat.ino };
  }

  private inspect(): SocketFileState {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(this.socketPath);
    } catch (err) {
      return errnoCode(err) === "ENOENT" ? "missing" : "replaced";
    }
    const same = stat.dev === this.identity?.dev && stat.ino === this.identity.ino;
    return same ? "intact" : "replaced";
  }

  private report(found: SocketFileState): void {
    if (found === "missing") {
      this.log.warn({ path: this.socketPath, flag: this.flag }, "socket file was removed; re-creating it");
    } else if (found === "replaced") {
      this.log.error(
        { path: this.socketPath, flag: this.flag },
        "socket file was replaced by another file; clients reach someone else until it is removed",
      );
    }
  }
}
