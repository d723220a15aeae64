import { fromBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { BoundaryLogEntrySchema, type BoundaryLogEntry } from "../../gen/agentd/boundary/v1/boundary_pb.js";
import { MAX_MESSAGE_SIZE } from "./codec.js";

/**
 * Logs the ring retains by default (`--boundary-log-ring`): at boundary's
 * 10-log batches, enough for a minute of a busy agent while staying a few MB.
 */
export const DEFAULT_LOG_RING_CAPACITY = 10_000;

/**
 * Bytes of one storage page: twice boundary's largest message (codec's
 * MAX_MESSAGE_SIZE, 32 KiB), so a batch always fits one page.
 */
const PAGE_BYTES = 2 * MAX_MESSAGE_SIZE;

/**
 * Page bytes the ring may hold per log of its capacity: agentd's own bound
 * (boundary's 10-log batches take ~60 bytes a log), so the default ring holds
 * at most ~5 MiB even when every frame is one large log.
 */
export const RING_BYTES_PER_LOG = 512;

/** Metadata slots of the first push; doubled when full, up to `capacity`. */
const INITIAL_SLOTS = 128;

/** Int32 fields of one batch's metadata slot, and their offsets. */
const META_FIELDS = 4;
const COUNT = 0;
const PAGE = 1;
const OFFSET = 2;
const LENGTH = 3;

/** What a reader gets: decoded logs and how many it missed since its cursor. */
export interface RingRead {
  logs: BoundaryLogEntry[];
  skipped: number;
  /** Where the next read continues. */
  cursor: number;
}

/**
 * A bounded in-memory ring of the boundary logs agentd received. Batches are
 * stored as their wire bytes (ReportBoundaryLogsRequest) with their receive
 * time, so the proxy's hot path never decodes for it; readers decode lazily.
 * Past `capacity` logs, or past `capacity * RING_BYTES_PER_LOG` bytes (at
 * least two pages), the oldest batches are dropped. Readers hold a cursor
 * (a log index) and are woken when batches arrive.
 *
 * Storage makes no JS object per batch, so a flood does not fill V8's young
 * generation with survivors: each batch's bytes are copied into fixed pages
 * the ring owns (reused once their batches are dropped) and its metadata sits
 * in typed arrays used as a circular buffer. Nothing is allocated before the
 * first push.
 */
export class BoundaryLogRing {
  private readonly maxPages: number;
  private readonly pages: Buffer[] = [];
  /** Retained batches on each page. */
  private readonly pageBatches: number[] = [];
  /** Pages holding no retained batch, other than the write page. */
  private readonly freePages: number[] = [];
  private writePage = -1;
  private writeOffset = 0;
  /** Per batch slot: META_FIELDS int32s (log count, page, offset, length). */
  private meta = new Int32Array(0);
  /** Per batch slot: the receive time (ms). */
  private times = new Float64Array(0);
  /** Slot of the oldest retained batch. */
  private head = 0;
  private batches = 0;
  private retained = 0;
  /** Logs ever pushed: the index the next log gets. */
  private total = 0;
  private listeners: (() => void)[] = [];

  constructor(readonly capacity: number = DEFAULT_LOG_RING_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("log ring capacity must be a positive integer");
    this.maxPages = Math.max(2, Math.floor((capacity * RING_BYTES_PER_LOG) / PAGE_BYTES));
  }

  /** Logs retained now. */
  get size(): number {
    return this.retained;
  }

  /** The cursor that reads only logs pushed from now on. */
  get end(): number {
    return this.total;
  }

  /** Bytes the ring's storage holds now (pages and metadata). */
  get retainedBytes(): number {
    return this.pages.length * PAGE_BYTES + this.meta.byteLength + this.times.byteLength;
  }

  /**
   * Stores a copy of one batch of `count` logs encoded as `bytes`, received at
   * `receivedMs`; the caller may reuse `bytes` afterwards.
   */
  push(bytes: Uint8Array, count: number, receivedMs: number): void {
    if (count <= 0) return;
    if (bytes.length > PAGE_BYTES) {
      // Larger than any boundary frame: counted as missed, and so is what came before, so reads never see a gap.
      while (this.batches > 0) this.evictOldest();
      this.total += count;
    } else {
      while (this.batches > 0 && this.retained + count > this.capacity) this.evictOldest();
      this.reserve(bytes.length);
      if (this.batches === this.times.length) this.grow();
      const slot = (this.head + this.batches) % this.times.length;
      const m = slot * META_FIELDS;
      this.meta[m + COUNT] = count;
      this.meta[m + PAGE] = this.writePage;
      this.meta[m + OFFSET] = this.writeOffset;
      this.meta[m + LENGTH] = bytes.length;
      this.times[slot] = receivedMs;
      this.pages[this.writePage]!.set(bytes, this.writeOffset);
      this.writeOffset += bytes.length;
      this.pageBatches[this.writePage]!++;
      this.batches++;
      this.retained += count;
      this.total += count;
    }
    const listeners = this.listeners;
    for (let i = 0; i < listeners.length; i++) listeners[i]!();
  }

  /** The cursor from which a read returns about the `n` most recent logs. */
  cursorForBacklog(n: number): number {
    return Math.max(0, this.total - Math.min(n, this.capacity));
  }

  /** Decodes the retained logs from `cursor` on. */
  read(cursor: number): RingRead {
    const logs: BoundaryLogEntry[] = [];
    let first = this.total - this.retained;
    const skipped = Math.max(0, first - cursor);
    for (let i = 0; i < this.batches; i++) {
      const slot = (this.head + i) % this.times.length;
      const m = slot * META_FIELDS;
      const count = this.meta[m + COUNT]!;
      if (first + count > cursor) {
        const offset = this.meta[m + OFFSET]!;
        const bytes = this.pages[this.meta[m + PAGE]!]!.subarray(offset, offset + this.meta[m + LENGTH]!);
        decodeBatch(bytes, this.times[slot]!, Math.max(0, cursor - first), logs);
      }
      first += count;
    }
    return { logs, skipped, cursor: this.total };
  }

  /** Calls `listener` after every push until the returned function is called. */
  subscribe(listener: () => void): () => void {
    // Copied on change so that push iterates a plain array (no iterator object per push).
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Makes the write page have room for `length` bytes: a free page, a new one, or the oldest page reclaimed. */
  private reserve(length: number): void {
    if (this.writePage >= 0 && this.writeOffset + length <= PAGE_BYTES) return;
    const full = this.writePage;
    this.writePage = -1;
    if (full >= 0 && this.pageBatches[full] === 0) this.freePages.push(full);
    if (this.freePages.length === 0 && this.pages.length < this.maxPages) {
      this.freePages.push(this.pages.length);
      this.pages.push(Buffer.allocUnsafeSlow(PAGE_BYTES));
      this.pageBatches.push(0);
    }
    // Every page is in use: dropping the oldest batches frees the oldest page.
    while (this.freePages.length === 0) this.evictOldest();
    this.writePage = this.freePages.pop()!;
    this.writeOffset = 0;
  }

  private evictOldest(): void {
    const m = this.head * META_FIELDS;
    const page = this.meta[m + PAGE]!;
    this.retained -= this.meta[m + COUNT]!;
    this.head = (this.head + 1) % this.times.length;
    this.batches--;
    const left = this.pageBatches[page]! - 1;
    this.pageBatches[page] = left;
    if (left === 0 && page !== this.writePage) this.freePages.push(page);
  }

  /** Doubles the metadata slots (never past `capacity`: every batch holds a log), oldest batch first. */
  private grow(): void {
    const slots = Math.min(this.capacity, Math.max(INITIAL_SLOTS, this.times.length * 2));
    const meta = new Int32Array(slots * META_FIELDS);
    const times = new Float64Array(slots);
    unroll(this.meta, this.head * META_FIELDS, meta);
    unroll(this.times, this.head, times);
    this.meta = meta;
    this.times = times;
    this.head = 0;
  }
}

/** Copies a full circular buffer `from`, whose oldest element is at `start`, to the front of `to`. */
function unroll(from: Int32Array | Float64Array, start: number, to: Int32Array | Float64Array): void {
  to.set(from.subarray(start));
  to.set(from.subarray(0, start), from.length - start);
}

/** Appends the logs of the batch `bytes` received at `receivedMs` to `out`, leaving out its first `from`. */
function decodeBatch(bytes: Uint8Array, receivedMs: number, from: number, out: BoundaryLogEntry[]): void {
  let req;
  try {
    req = fromBinary(ReportBoundaryLogsRequestSchema, bytes);
  } catch {
    return;
  }
  for (const log of req.logs.slice(from)) {
    const http = log.resource.case === "httpRequest" ? log.resource.value : undefined;
    out.push(
      create(BoundaryLogEntrySchema, {
        timeUnixMs: log.time ? BigInt(Math.round(timestampMs(log.time))) : 0n,
        receivedUnixMs: BigInt(receivedMs),
        allowed: log.allowed,
        method: http?.method ?? "",
        url: http?.url ?? "",
        matchedRule: http?.matchedRule ?? "",
        confinedProcessName: req.confinedProcessName,
        sessionId: req.sessionId,
        sequenceNumber: log.sequenceNumber,
      }),
    );
  }
}
