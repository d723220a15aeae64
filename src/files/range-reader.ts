import type { FileHandle } from "node:fs/promises";
import { Readable, type Writable } from "node:stream";

/** Read-file chunk size: the memory one streaming read holds per buffer. */
export const READ_CHUNK_BYTES = 64 * 1024;
/**
 * Buffers one HTTP read cycles through: one is filled from the file while
 * the other is written to the socket. A buffer is filled again only once
 * the socket has taken it, so a slow client holds two buffers and no
 * garbage piles up between collections however fast clients read.
 */
const BUFFERS_PER_READER = 2;

/**
 * `[start, start+length)` of an open file, to be read once: as a Readable
 * (Connect) or written straight to a Writable (HTTP). Owns the handle and
 * closes it when the bytes are read, the consumer goes away, or it fails.
 */
export class FileRangeReader {
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly start: number,
    readonly length: number,
    /** Counts bytes as they are taken (the read-bytes metric). */
    private readonly onBytes: (n: number) => void,
  ) {}

  /** The bytes as a paused stream; chunks are counted as the consumer takes them. */
  stream(): Readable {
    if (this.length === 0) {
      void this.close();
      return Readable.from([]);
    }
    this.closed = true;
    const stream = this.fh.createReadStream({ start: this.start, end: this.start + this.length - 1, highWaterMark: READ_CHUNK_BYTES });
    stream.on("data", (chunk: Buffer | string) => this.onBytes(chunk.length));
    stream.pause();
    return stream;
  }

  /**
   * Writes the bytes to `out` (not ended), reusing BUFFERS_PER_READER
   * buffers: the next read waits for a buffer the socket has finished with.
   * Resolves early when `out` closes (the client went away); rejects when
   * reading fails. Stops at the end of the file if it shrank.
   */
  async writeTo(out: Writable): Promise<void> {
    const free: Buffer[] = [];
    let allocated = 0;
    let wake: (() => void) | undefined;
    const signal = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    out.on("close", signal);
    try {
      for (let pos = this.start, end = this.start + this.length; pos < end && !out.destroyed; ) {
        let buf = free.pop();
        if (!buf && allocated < BUFFERS_PER_READER) {
          buf = Buffer.allocUnsafeSlow(Math.min(READ_CHUNK_BYTES, this.length));
          allocated++;
        }
        if (!buf) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        const { bytesRead } = await this.fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        this.onBytes(bytesRead);
        const taken = buf;
        out.write(taken.subarray(0, bytesRead), () => {
          free.push(taken);
          signal();
        });
      }
    } finally {
      out.off("close", signal);
      await this.close();
    }
  }

  /** Closes the handle without reading (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }
}
