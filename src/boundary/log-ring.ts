import { fromBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { BoundaryLogEntrySchema, type BoundaryLogEntry } from "../../gen/agentd/boundary/v1/boundary_pb.js";

/**
 * Logs the ring retains by default (`--boundary-log-ring`): at boundary's
 * 10-log batches, enough for a minute of a busy agent while staying a few MB.
 */
export const DEFAULT_LOG_RING_CAPACITY = 10_000;

/** One received batch, kept as the bytes boundary sent. */
interface Batch {
  /** Index of the batch's first log in the stream of every log ever pushed. */
  first: number;
  count: number;
  bytes: Uint8Array;
  receivedMs: number;
}

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
 * Past `capacity` logs the oldest batches are dropped. Readers hold a cursor
 * (a log index) and are woken when batches arrive.
 */
export class BoundaryLogRing {
  private readonly batches: Batch[] = [];
  private head = 0;
  private retained = 0;
  /** Logs ever pushed: the index the next log gets. */
  private total = 0;
  private readonly listeners = new Set<() => void>();

  constructor(readonly capacity: number = DEFAULT_LOG_RING_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("log ring capacity must be a positive integer");
  }

  /** Logs retained now. */
  get size(): number {
    return this.retained;
  }

  /** The cursor that reads only logs pushed from now on. */
  get end(): number {
    return this.total;
  }

  /** Stores one batch of `count` logs encoded as `bytes`, received at `receivedMs`. */
  push(bytes: Uint8Array, count: number, receivedMs: number): void {
    if (count <= 0) return;
    this.batches.push({ first: this.total, count, bytes, receivedMs });
    this.total += count;
    this.retained += count;
    while (this.retained > this.capacity && this.head < this.batches.length - 1) {
      this.retained -= this.batches[this.head]!.count;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches.splice(0, this.head);
      this.head = 0;
    }
    for (const listener of this.listeners) listener();
  }

  /** The cursor from which a read returns about the `n` most recent logs. */
  cursorForBacklog(n: number): number {
    return Math.max(0, this.total - Math.min(n, this.capacity));
  }

  /** Decodes the retained logs from `cursor` on. */
  read(cursor: number): RingRead {
    const logs: BoundaryLogEntry[] = [];
    const oldest = this.head < this.batches.length ? this.batches[this.head]!.first : this.total;
    const skipped = Math.max(0, oldest - cursor);
    for (let i = this.head; i < this.batches.length; i++) {
      const batch = this.batches[i]!;
      if (batch.first + batch.count <= cursor) continue;
      decodeBatch(batch, Math.max(0, cursor - batch.first), logs);
    }
    return { logs, skipped, cursor: this.total };
  }

  /** Calls `listener` after every push until the returned function is called. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Appends the batch's logs to `out`, leaving out its first `from`. */
function decodeBatch(batch: Batch, from: number, out: BoundaryLogEntry[]): void {
  let req;
  try {
    req = fromBinary(ReportBoundaryLogsRequestSchema, batch.bytes);
  } catch {
    return;
  }
  for (const log of req.logs.slice(from)) {
    const http = log.resource.case === "httpRequest" ? log.resource.value : undefined;
    out.push(
      create(BoundaryLogEntrySchema, {
        timeUnixMs: log.time ? BigInt(Math.round(timestampMs(log.time))) : 0n,
        receivedUnixMs: BigInt(batch.receivedMs),
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
