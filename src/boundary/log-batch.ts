import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ReportBoundaryLogsRequestSchema,
  type BoundaryLog,
  type ReportBoundaryLogsRequest,
} from "../../gen/coder/agent/v2/agent_pb.js";
import { rememberEncoding } from "../coderd/known-encoding.js";
import { rulesOf, walked, WireWalker } from "./wire-check.js";

/** Tags (field number << 3 | LEN) of ReportBoundaryLogsRequest's fields (agent.proto). */
const LOGS_TAG = (1 << 3) | 2;
const SESSION_ID_TAG = (2 << 3) | 2;
const CONFINED_PROCESS_NAME_TAG = (3 << 3) | 2;
const REQUEST_RULES = rulesOf(ReportBoundaryLogsRequestSchema);

/**
 * One ReportBoundaryLogsRequest as the proxy carries it: its wire bytes and
 * the few fields the proxy reads, never decoded into log objects. The bytes
 * are never changed; a batch just read may be a view of the socket's chunk,
 * so whatever keeps one for long keeps a copy (the forwarder's calls, the
 * log ring and the spool all do).
 */
export interface LogBatch {
  /** The request's wire bytes, as boundary sent them. */
  readonly bytes: Uint8Array;
  readonly sessionId: string;
  readonly confinedProcessName: string;
  /** How many `logs` the request carries. */
  readonly logCount: number;
  /** Length of the leading run of `logs` fields in `bytes` (what coalescing can slice off as is). */
  readonly logsEnd: number;
  /** How many received batches (boundary frames) it carries once coalesced; 1 when absent. */
  readonly batches?: number;
  /**
   * For a call joined from several batches: after each one, in order, where
   * its logs end in `bytes`, its log count and its received batches (three
   * numbers per batch), so the call can be cut between them.
   */
  readonly parts?: Uint32Array;
}

/** How many received batches `batch` carries (what Coder's batch counters count). */
export function batchesIn(batch: LogBatch): number {
  return batch.batches ?? 1;
}

/**
 * One pass over a request's bytes (see scanLogBatch). The walk is
 * synchronous, so one scanner, with its walker and its bound walk, serves
 * every frame without allocating; it also keeps the last session texts it
 * decoded, since one connection's frames carry the same ones.
 */
class LogBatchScanner {
  private readonly walker = new WireWalker(new Uint8Array(0));
  private readonly walk = () => this.fields();
  logCount = 0;
  logsEnd = 0;
  // Where the last session_id and confined_process_name fields start and end (-1: absent).
  sessionStart = -1;
  sessionEnd = -1;
  confinedStart = -1;
  confinedEnd = -1;
  private readonly sessionText = new TextCache();
  private readonly confinedText = new TextCache();

  scan(bytes: Uint8Array): LogBatch | undefined {
    this.walker.reset(bytes);
    this.logCount = 0;
    this.logsEnd = 0;
    this.sessionStart = this.sessionEnd = this.confinedStart = this.confinedEnd = -1;
    if (!walked(this.walk)) return undefined;
    return {
      bytes,
      // A proto3 string field that occurs more than once takes its last value.
      sessionId: this.sessionText.of(bytes, this.sessionStart, this.sessionEnd),
      confinedProcessName: this.confinedText.of(bytes, this.confinedStart, this.confinedEnd),
      logCount: this.logCount,
      logsEnd: this.logsEnd,
    };
  }

  private fields(): void {
    const walker = this.walker;
    const end = walker.bytes.length;
    let leading = true;
    while (walker.pos < end) {
      const tag = walker.tag(end);
      const start = walker.pos;
      walker.field(REQUEST_RULES, tag, end, 0);
      if (tag === LOGS_TAG) {
        this.logCount++;
        if (leading) this.logsEnd = walker.pos;
        continue;
      }
      leading = false;
      if (tag === SESSION_ID_TAG) {
        this.sessionStart = start;
        this.sessionEnd = walker.pos;
      } else if (tag === CONFINED_PROCESS_NAME_TAG) {
        this.confinedStart = start;
        this.confinedEnd = walker.pos;
      }
    }
  }
}

/** The text of a LEN string field, remembering the last one decoded so the same bytes again cost no decode. */
class TextCache {
  private bytes: Uint8Array = new Uint8Array(0);
  private text = "";

  /** The text of the field whose length varint starts at `start` and which ends at `end` (-1: absent, ""). */
  of(bytes: Uint8Array, start: number, end: number): string {
    if (start < 0) return "";
    let pos = start;
    while (bytes[pos]! >= 0x80) pos++;
    pos++;
    if (!this.holds(bytes, pos, end)) {
      // A copy (Buffer's own slice would be a view), so no batch's bytes are kept alive.
      this.bytes = Uint8Array.prototype.slice.call(bytes, pos, end);
      this.text = Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length).toString("utf8");
    }
    return this.text;
  }

  private holds(bytes: Uint8Array, start: number, end: number): boolean {
    const kept = this.bytes;
    if (kept.length !== end - start) return false;
    for (let i = 0; i < kept.length; i++) if (kept[i] !== bytes[start + i]) return false;
    return true;
  }
}

const scanner = new LogBatchScanner();

/**
 * The batch `bytes` encode when they are a plain, well-formed request (see
 * wire-check.ts), found by one pass over them that decodes only the session
 * fields; undefined for anything else.
 */
export function scanLogBatch(bytes: Uint8Array): LogBatch | undefined {
  return scanner.scan(bytes);
}

/** The batch of a decoded request, encoded afresh (the rare paths: an envelope decoded whole, a piece of a split batch). */
export function logBatchOf(request: ReportBoundaryLogsRequest): LogBatch {
  const bytes = toBinary(ReportBoundaryLogsRequestSchema, request);
  return scanLogBatch(bytes) ?? fromDecoded(bytes, request);
}

/** A batch from bytes and the request they decode to; coalescing re-encodes its logs unless they lead the bytes. */
function fromDecoded(bytes: Uint8Array, request: ReportBoundaryLogsRequest): LogBatch {
  return {
    bytes,
    sessionId: request.sessionId,
    confinedProcessName: request.confinedProcessName,
    logCount: request.logs.length,
    logsEnd: 0,
  };
}

/**
 * The batch of request bytes received (owned by the caller from now on):
 * scanned when plain, otherwise decoded whole by protobuf-es, so exactly
 * what fromBinary accepts is accepted, and the bytes kept are those
 * received. Throws fromBinary's error for bytes that are not a request.
 */
export function decodeLogBatch(bytes: Uint8Array): LogBatch {
  return scanLogBatch(bytes) ?? fromDecoded(bytes, fromBinary(ReportBoundaryLogsRequestSchema, bytes));
}

/**
 * The batch's logs, decoded (for the rare paths that need them one by one).
 * Bytes a batch holds always decode: they were checked when it was made.
 */
export function decodeLogs(batch: LogBatch): BoundaryLog[] {
  return fromBinary(ReportBoundaryLogsRequestSchema, batch.bytes).logs;
}

/**
 * The request to hand the Agent API client: it carries the batch's bytes
 * (rememberEncoding), so a transport sends them without encoding, and its
 * fields are true to them: the session fields as scanned, `logs` decoded
 * from the bytes when first read.
 */
export function batchRequest(batch: LogBatch): ReportBoundaryLogsRequest {
  let logs: BoundaryLog[] | undefined;
  const request = {
    $typeName: ReportBoundaryLogsRequestSchema.typeName,
    sessionId: batch.sessionId,
    confinedProcessName: batch.confinedProcessName,
    get logs(): BoundaryLog[] {
      logs ??= decodeLogs(batch);
      return logs;
    },
  };
  return rememberEncoding(request as ReportBoundaryLogsRequest, batch.bytes);
}
