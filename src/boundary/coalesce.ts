import { create, toBinary } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { MAX_MESSAGE_SIZE } from "./codec.js";
import { decodeLogs, type LogBatch } from "./log-batch.js";

/**
 * Largest request one coalesced ReportBoundaryLogs call carries: boundary's
 * own frame bound (codec.go MaxMessageSize), so no call is bigger than a
 * request boundary itself may send, and a coderd that takes boundary's
 * largest frame takes every call.
 */
export const MAX_CALL_BYTES = MAX_MESSAGE_SIZE;

/** True when two batches may share one call: the same session and confined process. */
function sameSession(a: LogBatch, b: LogBatch): boolean {
  return a.sessionId === b.sessionId && a.confinedProcessName === b.confinedProcessName;
}

/**
 * How many batches from the head of `batches` go into one call: the first
 * always, then those that follow with the same session while their bytes
 * together stay within `maxBytes`.
 */
export function callLength(batches: readonly LogBatch[], maxBytes = MAX_CALL_BYTES): number {
  const first = batches[0];
  if (!first) return 0;
  let bytes = first.bytes.length;
  let n = 1;
  for (; n < batches.length; n++) {
    const next = batches[n]!;
    if (!sameSession(first, next) || bytes + next.bytes.length > maxBytes) break;
    bytes += next.bytes.length;
  }
  return n;
}

/** The bytes of `session_id` and `confined_process_name` as Go writes them (after the logs). */
function tailBytes(batch: LogBatch): Uint8Array {
  return toBinary(
    ReportBoundaryLogsRequestSchema,
    create(ReportBoundaryLogsRequestSchema, {
      sessionId: batch.sessionId,
      confinedProcessName: batch.confinedProcessName,
    }),
  );
}

/** True when `bytes` end with `tail`, right after `from`. */
function endsWith(bytes: Uint8Array, from: number, tail: Uint8Array): boolean {
  if (bytes.length - from !== tail.length) return false;
  for (let i = 0; i < tail.length; i++) if (bytes[from + i] !== tail[i]) return false;
  return true;
}

/**
 * The `logs` fields of a batch as wire bytes: a slice of its bytes when
 * they are the logs followed by the session fields (what boundary writes),
 * else the logs decoded and encoded afresh.
 */
function logsBytes(batch: LogBatch, tail: Uint8Array): Uint8Array {
  if (endsWith(batch.bytes, batch.logsEnd, tail)) return batch.bytes.subarray(0, batch.logsEnd);
  return toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { logs: decodeLogs(batch) }));
}

/**
 * One batch carrying the logs of `batches` (one session, in order) and
 * their shared session fields: the batches' own log bytes joined, then the
 * session fields once, so nothing is decoded or encoded again; its bytes
 * decode to exactly the batches' logs.
 */
export function coalesce(batches: readonly LogBatch[]): LogBatch {
  const first = batches[0]!;
  if (batches.length === 1) return first;
  const tail = tailBytes(first);
  const parts = batches.map((b) => logsBytes(b, tail));
  const logsEnd = parts.reduce((n, p) => n + p.length, 0);
  parts.push(tail);
  return {
    bytes: Buffer.concat(parts),
    sessionId: first.sessionId,
    confinedProcessName: first.confinedProcessName,
    logCount: batches.reduce((n, b) => n + b.logCount, 0),
    logsEnd,
  };
}
