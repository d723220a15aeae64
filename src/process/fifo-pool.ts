import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { errnoCode, errorText } from "../errors.js";
import type { Logger } from "../log.js";

/** FIFOs kept ready so a start rarely waits for `mkfifo`; a refill starts below half of it. */
export const FIFO_POOL_SIZE = 16;

/**
 * Start of every FIFO directory's name; the owner's pid follows, then a
 * dash and mkdtemp's random suffix (`agentd-output-<pid>-XXXXXX`).
 */
export const FIFO_DIR_PREFIX = "agentd-output-";

/** A directory name this pool's format produces, with the owner pid captured. */
const FIFO_DIR_NAME = new RegExp(`^${FIFO_DIR_PREFIX}(\\d+)-[A-Za-z0-9]{6}$`);

/** A FIFO name inside such a directory. */
const FIFO_NAME = /^\d+\.fifo$/;

/** What a FifoPool is built with. */
export interface FifoPoolOptions {
  /** FIFOs made per batch; FIFO_POOL_SIZE unless set. */
  size?: number;
  /** The `mkfifo` program to run. */
  mkfifo?: string;
  /** Where the FIFO directory is made; the temp directory unless set. */
  parent?: string;
}

/**
 * Named pipes for process output. Node cannot create an anonymous pipe pair,
 * but a FIFO opened once for reading and once for writing is one: the write
 * end goes to the child as both stdout and stderr (one pipe, as Go hands
 * it), and agentd reads the other end into a reused buffer. FIFOs live in a
 * private (0700) directory named after agentd's pid, are made in batches
 * with `mkfifo`, and are reused once a reader saw end of file (no writer is
 * left). Directories left by an agentd that was killed are removed by
 * `sweepStale`.
 */
export class FifoPool {
  private dir: string | undefined;
  private readonly free: string[] = [];
  private next = 0;
  private refilling = false;
  private unavailable = false;
  private closed = false;
  private readonly size: number;
  private readonly mkfifo: string;
  private readonly parent: string;

  constructor(
    private readonly log: Logger,
    opts: FifoPoolOptions = {},
  ) {
    this.size = opts.size ?? FIFO_POOL_SIZE;
    this.mkfifo = opts.mkfifo ?? "mkfifo";
    this.parent = opts.parent ?? os.tmpdir();
  }

  /** A FIFO no process uses, or undefined when FIFOs cannot be made here. */
  acquire(): string | undefined {
    if (this.unavailable || this.closed) return undefined;
    if (this.free.length === 0) {
      try {
        const paths = this.newPaths(this.size);
        execFileSync(this.mkfifo, ["-m", "600", ...paths], { stdio: "ignore" });
        this.free.push(...paths);
      } catch (err) {
        this.unavailable = true;
        this.log.warn({ err: errorText(err) }, "cannot create FIFOs; capturing output through two pipes instead");
        return undefined;
      }
    }
    const fifo = this.free.pop()!;
    if (this.free.length < this.size / 2) this.refill();
    return fifo;
  }

  /** Returns a FIFO; one that may still have a writer (`reusable` false) is removed instead. */
  release(fifo: string, reusable: boolean): void {
    if (reusable && !this.closed && this.free.length < this.size * 2) this.free.push(fifo);
    else fs.rm(fifo, { force: true }, () => {});
  }

  /** Removes the directory and every FIFO in it. */
  close(): void {
    this.closed = true;
    this.free.length = 0;
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Removes FIFO directories an agentd left behind when it was killed
   * before it could clean up. Only directories in this pool's own name
   * format, owned by this user, holding nothing but FIFOs, and whose owner
   * pid is no longer running are removed. Resolves with how many were.
   */
  async sweepStale(): Promise<number> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.parent);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      const owner = FIFO_DIR_NAME.exec(name)?.[1];
      if (!owner || Number(owner) === process.pid || pidRunning(Number(owner))) continue;
      const dir = path.join(this.parent, name);
      if (!(await isStaleFifoDir(dir))) continue;
      await fs.promises.rm(dir, { recursive: true, force: true });
      removed++;
    }
    if (removed > 0) this.log.info({ removed, parent: this.parent }, "removed FIFO directories left by an earlier agentd");
    return removed;
  }

  private newPaths(n: number): string[] {
    this.dir ??= fs.mkdtempSync(path.join(this.parent, `${FIFO_DIR_PREFIX}${process.pid}-`));
    return Array.from({ length: n }, () => path.join(this.dir!, `${this.next++}.fifo`));
  }

  private refill(): void {
    if (this.refilling) return;
    this.refilling = true;
    const paths = this.newPaths(this.size - this.free.length);
    execFile(this.mkfifo, ["-m", "600", ...paths], (err) => {
      this.refilling = false;
      if (this.closed) return;
      if (err) this.log.debug({ err: errorText(err) }, "FIFO refill failed");
      else this.free.push(...paths);
    });
  }
}

/** Whether `pid` exists (a process of another user counts: it is not ours to judge). */
function pidRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== "ESRCH";
  }
}

/** A real directory (not a link) of this user that holds only FIFOs named as this pool names them. */
async function isStaleFifoDir(dir: string): Promise<boolean> {
  try {
    const st = await fs.promises.lstat(dir);
    if (!st.isDirectory() || st.uid !== process.getuid?.()) return false;
    for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
      if (!entry.isFIFO() || !FIFO_NAME.test(entry.name)) return false;
    }
    return true;
  } catch {
    return false;
  }
}
