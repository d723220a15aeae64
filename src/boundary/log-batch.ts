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
 * are the proxy's own (never a view of a socket chunk) and are not changed.
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
}

/**
 * The batch `bytes` encode when they are a plain, well-formed request (see
 * wire-check.ts), found by one pass over them that decodes only the session
 * fields; undefined for anything else.
 */
export function scanLogBatch(bytes: Uint8Array): LogBatch | undefined {
  const walker = new WireWalker(bytes);
  const end = bytes.length;
  let logCount = 0;
  let logsEnd = 0;
  let leading = true;
  // Where the last session_id and confined_process_name fields start and end.
  let sessionStart = -1;
  let sessionEnd = -1;
  let confinedStart = -1;
  let confinedEnd = -1;
  const ok = walked(() => {
    while (walker.pos < end) {
      const tag = walker.tag(end);
      const start = walker.pos;
      walker.field(REQUEST_RULES, tag, end, 0);
      if (tag === LOGS_TAG) {
        logCount++;
        if (leading) logsEnd = walker.pos;
        continue;
      }
      leading = false;
      if (tag === SESSION_ID_TAG) [sessionStart, sessionEnd] = [start, walker.pos];
      else if (tag === CONFINED_PROCESS_NAME_TAG) [confinedStart, confinedEnd] = [start, walker.pos];
    }
  });
  if (!ok) return undefined;
  return {
    bytes,
    // A proto3 string field that occurs more than once takes its last value.
    sessionId: stringField(bytes, sessionStart, sessionEnd),
    confinedProcessName: stringField(bytes, confinedStart, confinedEnd),
    logCount,
    logsEnd,
  };
}

/** The text of a LEN field whose length varint starts at `start` (-1: absent, ""). */
function stringField(bytes: Uint8Array, start: number, end: number): string {
  if (start < 0) return "";
  let pos = start;
  while (bytes[pos]! >= 0x80) pos++;
  return Buffer.from(bytes.buffer, bytes.byteOffset + pos + 1, end - pos - 1).toString("utf8");
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
