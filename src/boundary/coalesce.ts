import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import {
  ReportBoundaryLogsRequestSchema,
  type ReportBoundaryLogsRequest,
} from "../../gen/coder/agent/v2/agent_pb.js";
import { rememberEncoding, wireBytes } from "../coderd/known-encoding.js";
import { MAX_MESSAGE_SIZE } from "./codec.js";

/**
 * Largest request one coalesced ReportBoundaryLogs call carries: boundary's
 * own frame bound (codec.go MaxMessageSize), so no call is bigger than a
 * request boundary itself may send, and a coderd that takes boundary's
 * largest frame takes every call.
 */
export const MAX_CALL_BYTES = MAX_MESSAGE_SIZE;
/** Field number of `logs` in ReportBoundaryLogsRequest (agent.proto). */
const LOGS_FIELD = 1;

/** A received request with its wire bytes, as the forwarder queues it. */
export interface QueuedBatch {
  readonly request: ReportBoundaryLogsRequest;
  /** The request's wire bytes (those boundary sent, when known). */
  readonly bytes: Uint8Array;
}

/** Pairs a request with its wire bytes. */
export function queued(request: ReportBoundaryLogsRequest): QueuedBatch {
  return { request, bytes: wireBytes(ReportBoundaryLogsRequestSchema, request) };
}

/** True when two requests may share one call: the same session and confined process. */
function sameSession(a: ReportBoundaryLogsRequest, b: ReportBoundaryLogsRequest): boolean {
  return a.sessionId === b.sessionId && a.confinedProcessName === b.confinedProcessName;
}

/**
 * How many batches from the head of `batches` go into one call: the first
 * always, then those that follow with the same session while their bytes
 * together stay within `maxBytes`.
 */
export function callLength(batches: readonly QueuedBatch[], maxBytes = MAX_CALL_BYTES): number {
  const first = batches[0];
  if (!first) return 0;
  let bytes = first.bytes.length;
  let n = 1;
  for (; n < batches.length; n++) {
    const next = batches[n]!;
    if (!sameSession(first.request, next.request) || bytes + next.bytes.length > maxBytes) break;
    bytes += next.bytes.length;
  }
  return n;
}

/** The bytes of `session_id` and `confined_process_name` as Go writes them (after the logs). */
function tailBytes(request: ReportBoundaryLogsRequest): Uint8Array {
  return toBinary(
    ReportBoundaryLogsRequestSchema,
    create(ReportBoundaryLogsRequestSchema, {
      sessionId: request.sessionId,
      confinedProcessName: request.confinedProcessName,
    }),
  );
}

/** True when `bytes[0, end)` holds nothing but `logs` fields. */
function onlyLogs(bytes: Uint8Array, end: number): boolean {
  try {
    const reader = new BinaryReader(bytes.subarray(0, end));
    while (reader.pos < end) {
      const [field, wireType] = reader.tag();
      if (field !== LOGS_FIELD || wireType !== WireType.LengthDelimited) return false;
      reader.skip(wireType);
    }
    return reader.pos === end;
  } catch {
    return false;
  }
}

/**
 * The `logs` fields of a batch as wire bytes: a slice of the bytes received
 * when they are the logs followed by the session fields (what boundary
 * writes), else the logs encoded afresh.
 */
function logsBytes(batch: QueuedBatch, tail: Uint8Array): Uint8Array {
  const { bytes } = batch;
  const end = bytes.length - tail.length;
  if (end >= 0 && Buffer.from(tail).equals(bytes.subarray(end)) && onlyLogs(bytes, end)) return bytes.subarray(0, end);
  return toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { logs: batch.request.logs }));
}

/**
 * One request carrying the logs of `batches` (one session, in order) and
 * their shared session fields. Its wire bytes are the batches' own log
 * bytes joined, then the session fields, so passing it on encodes nothing
 * again; they decode to exactly the batches' logs.
 */
export function coalesce(batches: readonly QueuedBatch[]): ReportBoundaryLogsRequest {
  const first = batches[0]!;
  if (batches.length === 1) return first.request;
  const tail = tailBytes(first.request);
  const parts = batches.map((b) => logsBytes(b, tail));
  parts.push(tail);
  const request = create(ReportBoundaryLogsRequestSchema, {
    sessionId: first.request.sessionId,
    confinedProcessName: first.request.confinedProcessName,
    logs: batches.flatMap((b) => b.request.logs),
  });
  return rememberEncoding(request, Buffer.concat(parts));
}
