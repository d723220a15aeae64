import { decodeUtf8LikeGo } from "./go-utf8.js";

/** Bytes kept from the start of the output (agentproc.MaxHeadBytes). */
export const MAX_HEAD_BYTES = 16384;
/** Bytes kept from the end of the output (agentproc.MaxTailBytes). */
export const MAX_TAIL_BYTES = 16384;
/** Longest line rendered whole (agentproc.MaxLineLength). */
export const MAX_LINE_LENGTH = 2048;
/** Appended to a cut line, which then is exactly MAX_LINE_LENGTH bytes (agentproc headtail.go). */
export const LINE_TRUNCATION_SUFFIX = " ... [truncated]";

const SUFFIX_BYTES = Buffer.from(LINE_TRUNCATION_SUFFIX);
const LINE_KEEP = MAX_LINE_LENGTH - SUFFIX_BYTES.length;
const NEWLINE = 0x0a;

/** Copies `src[start, end)` into `dst` at `at` without allocating a view (this is the hot path of capture). */
function copyBytes(src: Uint8Array, dst: Buffer, at: number, start: number, end: number): void {
  Buffer.prototype.copy.call(src, dst, at, start, end);
}

/** How output was cut, in Coder's ProcessTruncation shape. */
export interface Truncation {
  original_bytes: number;
  retained_bytes: number;
  omitted_bytes: number;
  strategy: "head_tail";
}

/** A rendered snapshot: raw bytes (what `retained_bytes` counts) and truncation info. */
export interface RawOutput {
  bytes: Buffer;
  truncation: Truncation | null;
}

/** A rendered snapshot as Coder's JSON carries it. */
export interface RenderedOutput {
  output: string;
  truncation: Truncation | null;
}

const EMPTY: Buffer = Buffer.alloc(0);

/** A buffer of `size` bytes starting with the first `used` bytes of `buf`. */
function grow(buf: Buffer, size: number, used: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  buf.copy(b, 0, 0, used);
  return b;
}

/**
 * Keeps the first `headSize` bytes and the last `tailSize` bytes of
 * everything written, so memory stays at head+tail however much a process
 * prints. Each half is allocated at full size when first needed and copied
 * into, and trimmed to what it holds on `close`, so a finished process with
 * little output keeps little memory. Cuts are byte-based and may split a
 * multi-byte character, as Coder's HeadTailBuffer does.
 */
export class HeadTailBuffer {
  private head: Buffer = EMPTY;
  private ring: Buffer = EMPTY;
  private headLen = 0;
  private ringLen = 0;
  /** Next write position in the ring. */
  private ringPos = 0;
  private total = 0;
  private isClosed = false;

  constructor(
    readonly headSize = MAX_HEAD_BYTES,
    readonly tailSize = MAX_TAIL_BYTES,
  ) {}

  /** Accepts the first `n` bytes of `p` (all of it by default) and returns `n`; an empty write changes nothing. */
  write(p: Uint8Array, n = p.length): number {
    if (n === 0) return 0;
    this.total += n;
    let off = 0;
    if (this.headLen < this.headSize) {
      if (this.head.length < this.headSize) this.head = grow(this.head, this.headSize, this.headLen);
      off = Math.min(n, this.headSize - this.headLen);
      copyBytes(p, this.head, this.headLen, 0, off);
      this.headLen += off;
    }
    if (off < n) this.writeTail(p, off, n);
    return n;
  }

  private writeTail(p: Uint8Array, off: number, end: number): void {
    const size = this.tailSize;
    if (size === 0) return;
    if (this.ring.length < size) this.ring = grow(this.ring, size, this.ringLen);
    const rem = end - off;
    if (rem >= size) {
      copyBytes(p, this.ring, 0, end - size, end);
      this.ringPos = 0;
      this.ringLen = size;
      return;
    }
    const first = Math.min(rem, size - this.ringPos);
    copyBytes(p, this.ring, this.ringPos, off, off + first);
    if (rem > first) copyBytes(p, this.ring, 0, off + first, end);
    this.ringPos = (this.ringPos + rem) % size;
    this.ringLen = Math.min(size, this.ringLen + rem);
  }

  private tailBytes(): Buffer {
    if (this.ringLen < this.tailSize) return Buffer.from(this.ring.subarray(0, this.ringLen));
    return Buffer.concat([this.ring.subarray(this.ringPos), this.ring.subarray(0, this.ringPos)]);
  }

  /** The rendered output as raw bytes, with truncation info when bytes were omitted. */
  rawOutput(): RawOutput {
    if (this.total === 0) return { bytes: Buffer.alloc(0), truncation: null };
    const head = truncateLines(this.head.subarray(0, this.headLen));
    if (this.headLen < this.headSize || this.ringLen === 0) return { bytes: Buffer.from(head), truncation: null };
    const omitted = this.total - this.headLen - this.ringLen;
    const sep = omitted > 0 ? `\n\n... [omitted ${omitted} bytes] ...\n\n` : "\n";
    const bytes = Buffer.concat([head, Buffer.from(sep), truncateLines(this.tailBytes())]);
    return {
      bytes,
      truncation: {
        original_bytes: this.total,
        retained_bytes: bytes.length,
        omitted_bytes: omitted,
        strategy: "head_tail",
      },
    };
  }

  /** The rendered output as a string, invalid UTF-8 rendered as Go's JSON encoder does. */
  output(): RenderedOutput {
    const { bytes, truncation } = this.rawOutput();
    return { output: decodeUtf8LikeGo(bytes), truncation };
  }

  /** A copy of the raw retained bytes: head then tail, without markers. */
  bytes(): Buffer {
    return Buffer.concat([this.head.subarray(0, this.headLen), this.tailBytes()]);
  }

  /** Bytes currently retained (head + tail). */
  len(): number {
    return this.headLen + this.ringLen;
  }

  /** Every byte ever written, retained or not. */
  totalWritten(): number {
    return this.total;
  }

  /** Forgets everything written. */
  reset(): void {
    this.headLen = 0;
    this.ringLen = 0;
    this.ringPos = 0;
    this.total = 0;
  }

  /**
   * Marks the output complete (the process exited and its pipe drained) and
   * trims both halves to the bytes they hold. A later write still works; it
   * reallocates what it needs.
   */
  close(): void {
    this.isClosed = true;
    if (this.head.length > this.headLen) this.head = Buffer.from(this.head.subarray(0, this.headLen));
    if (this.ring.length > this.ringLen || this.ringPos !== 0) {
      this.ring = this.tailBytes();
      this.ringPos = this.ringLen % this.tailSize || 0;
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }
}

/**
 * Cuts every line longer than MAX_LINE_LENGTH bytes to its first bytes plus
 * LINE_TRUNCATION_SUFFIX; newlines are kept and input of at most
 * MAX_LINE_LENGTH bytes is returned unchanged.
 */
export function truncateLines(s: Buffer): Buffer {
  if (s.length <= MAX_LINE_LENGTH) return s;
  const parts: Buffer[] = [];
  let start = 0;
  let cut = false;
  while (start <= s.length) {
    let end = s.indexOf(NEWLINE, start);
    const last = end === -1;
    if (last) end = s.length;
    if (end - start > MAX_LINE_LENGTH) {
      parts.push(s.subarray(start, start + LINE_KEEP), SUFFIX_BYTES);
      cut = true;
    } else {
      parts.push(s.subarray(start, end));
    }
    if (last) break;
    parts.push(s.subarray(end, end + 1));
    start = end + 1;
  }
  return cut ? Buffer.concat(parts) : s;
}
