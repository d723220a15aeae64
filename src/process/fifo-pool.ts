import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";

/** FIFOs kept ready so a start rarely waits for `mkfifo`; a refill starts below half of it. */
export const FIFO_POOL_SIZE = 16;

/**
 * Named pipes for process output. Node cannot create an anonymous pipe pair,
 * but a FIFO opened once for reading and once for writing is one: the write
 * end goes to the child as both stdout and stderr (one pipe, as Go hands
 * it), and agentd reads the other end into a reused buffer. FIFOs live in a
 * private (0700) directory, are made in batches with `mkfifo`, and are
 * reused once a reader saw end of file (no writer is left).
 */
export class FifoPool {
  private dir: string | undefined;
  private readonly free: string[] = [];
  private next = 0;
  private refilling = false;
  private unavailable = false;
  private closed = false;

  constructor(
    private readonly log: Logger,
    private readonly size = FIFO_POOL_SIZE,
    /** The `mkfifo` program to run. */
    private readonly mkfifo = "mkfifo",
  ) {}

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

  private newPaths(n: number): string[] {
    this.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), "agentd-output-"));
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
