import { create, toBinary } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { WS_MAX_MESSAGE } from "../coderd/websocket-stream.js";
import { MAX_MESSAGE_SIZE } from "./codec.js";
import { batchesIn, decodeLogs, type LogBatch } from "./log-batch.js";

/**
 * Room a call needs on the coderd link besides its request: the yamux Data
 * frame's header and the dRPC invoke (with the method name), message and
 * close-send packets, about 70 bytes (agentd's own margin).
 */
const CALL_FRAMING_BYTES = 256;
/**
 * Largest request one coalesced ReportBoundaryLogs call carries: within
 * boundary's own frame bound (codec.go MaxMessageSize), so no call is bigger
 * than a request boundary itself may send, and small enough that a full
 * call leaves as one WebSocket message (WS_MAX_MESSAGE) on the coderd link.
 */
export const MAX_CALL_BYTES = Math.min(MAX_MESSAGE_SIZE, WS_MAX_MESSAGE - CALL_FRAMING_BYTES);
/**
 * Received batches one call joins at most (agentd's own bound): room for
 * boundary's 10-log frames of any usual size, while the call's record of
 * its batches (LogBatch.parts) fits a small space after its bytes.
 */
export const MAX_CALL_BATCHES = 256;
/** LogBatch.parts takes three numbers a batch. */
const PART_FIELDS = 3;
/** Where a call's parts start in its buffer: after the largest request, 4-byte aligned. */
const PARTS_AT = Math.ceil(MAX_CALL_BYTES / 4) * 4;

/** True when two batches may share one call: the same session and confined process. */
function sameSession(a: LogBatch, b: LogBatch): boolean {
  return a.sessionId === b.sessionId && a.confinedProcessName === b.confinedProcessName;
}

/** What stands for a joined call's first batch once its bytes are in the call's buffer. */
const NO_BYTES = new Uint8Array(0);
/** The parts of a builder with no joined call. */
const NO_PARTS = new Uint32Array(0);

/** The last session fields encoded: one connection's calls all carry the same. */
let lastTail: { sessionId: string; confinedProcessName: string; bytes: Uint8Array } | undefined;

/** The bytes of `session_id` and `confined_process_name` as Go writes them (after the logs). */
function tailBytes(batch: LogBatch): Uint8Array {
  if (lastTail?.sessionId === batch.sessionId && lastTail.confinedProcessName === batch.confinedProcessName) return lastTail.bytes;
  const { sessionId, confinedProcessName } = batch;
  const bytes = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { sessionId, confinedProcessName }));
  lastTail = { sessionId, confinedProcessName, bytes };
  return bytes;
}

/** True when `bytes` end with `tail`, right after `from`. */
function endsWith(bytes: Uint8Array, from: number, tail: Uint8Array): boolean {
  if (bytes.length - from !== tail.length) return false;
  for (let i = 0; i < tail.length; i++) if (bytes[from + i] !== tail[i]) return false;
  return true;
}

/**
 * The `logs` fields of a batch as wire bytes: a view of its bytes when
 * they are the logs followed by the session fields (what boundary writes),
 * else the logs decoded and encoded afresh.
 */
function logsBytes(batch: LogBatch, tail: Uint8Array): Uint8Array {
  if (endsWith(batch.bytes, batch.logsEnd, tail)) return batch.bytes.subarray(0, batch.logsEnd);
  return toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { logs: decodeLogs(batch) }));
}

/**
 * Builds one ReportBoundaryLogs call from batches of one session, in
 * order, as they arrive: their log bytes are copied into one buffer of
 * MAX_CALL_BYTES, and the session fields are written once when the call is
 * taken, so nothing is decoded or encoded again and the call's bytes decode
 * to exactly the batches' logs. A queue of calls being built holds a few
 * large buffers instead of one small object per received batch, which a
 * flood would keep alive across the young generation's collections.
 *
 * A lone batch is kept as it is (not copied) and taken as it is, until
 * `own` copies it for a call that waits; once a second batch joins, no
 * batch's bytes are kept (they may be a view of a socket's chunk).
 */
export class CallBuilder {
  /** The call's first batch (without its bytes once a second batch joined); undefined while empty. */
  private first: LogBatch | undefined;
  /** The lone first batch's bytes are a copy of the builder's own. */
  private owned = false;
  /** The log bytes once a second batch joined; undefined before. */
  private buffer: Buffer | undefined;
  private used = 0;
  private tail: Uint8Array = new Uint8Array(0);
  private logCount = 0;
  private batches = 0;
  /** Batches joined, each with its part. */
  private joined = 0;
  /** LogBatch.parts of the call, kept after its bytes in `buffer`. */
  private parts: Uint32Array = NO_PARTS;

  /** True when no batch has been added since the last take. */
  get empty(): boolean {
    return this.first === undefined;
  }

  /** Wire bytes of the call as it stands. */
  get size(): number {
    if (this.first === undefined) return 0;
    return this.buffer === undefined ? this.first.bytes.length : this.used + this.tail.length;
  }

  /**
   * Adds `batch` to the call when it has the call's session and the call
   * stays within MAX_CALL_BYTES, and returns true; otherwise changes
   * nothing and returns false (take the call, then add again). An empty
   * builder takes any batch. The batch's bytes are not kept once a second
   * batch joins.
   */
  add(batch: LogBatch): boolean {
    const first = this.first;
    if (first === undefined) {
      this.first = batch;
      this.owned = false;
      this.logCount = batch.logCount;
      this.batches = batchesIn(batch);
      this.joined = 0;
      return true;
    }
    if (!sameSession(first, batch)) return false;
    const tail = this.buffer === undefined ? tailBytes(first) : this.tail;
    const head = this.buffer === undefined ? logsBytes(first, tail) : undefined;
    const logs = logsBytes(batch, tail);
    const used = head?.length ?? this.used;
    if (used + logs.length + tail.length > MAX_CALL_BYTES || this.joined >= MAX_CALL_BATCHES) return false;
    if (head !== undefined) {
      // One allocation holds the call's bytes and, after them, its parts: no object a batch.
      const buffer = Buffer.allocUnsafeSlow(PARTS_AT + MAX_CALL_BATCHES * PART_FIELDS * 4);
      buffer.set(head, 0);
      this.buffer = buffer;
      this.tail = tail;
      this.parts = new Uint32Array(buffer.buffer, buffer.byteOffset + PARTS_AT, MAX_CALL_BATCHES * PART_FIELDS);
      this.part(head.length, first);
      // Its bytes are in the buffer now: a view of a socket's chunk would keep the whole chunk alive.
      this.first = { sessionId: first.sessionId, confinedProcessName: first.confinedProcessName, bytes: NO_BYTES, logCount: 0, logsEnd: 0 };
    }
    this.buffer!.set(logs, used);
    this.used = used + logs.length;
    this.logCount += batch.logCount;
    this.batches += batchesIn(batch);
    this.part(this.used, batch);
    return true;
  }

  /** Records that `batch`'s logs end at `end`. */
  private part(end: number, batch: LogBatch): void {
    const at = this.joined++ * PART_FIELDS;
    this.parts[at] = end;
    this.parts[at + 1] = batch.logCount;
    this.parts[at + 2] = batchesIn(batch);
  }

  /**
   * Copies a lone batch's bytes, once: the call is to wait (for a call slot,
   * or behind its lane's call in flight), and they may be a view of a socket
   * chunk, which a waiting call must not keep alive.
   */
  own(): void {
    const first = this.first;
    if (first === undefined || this.buffer !== undefined || this.owned) return;
    this.first = { ...first, bytes: Uint8Array.prototype.slice.call(first.bytes) };
    this.owned = true;
  }

  /**
   * The call built so far (undefined when empty); the builder is empty
   * after. With `keep` (the call waits in a queue), a lone batch's bytes
   * are copied (see `own`), and a joined call that fills little of its
   * buffer (closed early: another session's batch followed) is copied into
   * one of its size, so a queue's memory stays near the bytes it counts.
   */
  take(keep = false): LogBatch | undefined {
    if (keep) this.own();
    const first = this.first;
    const buffer = this.buffer;
    const parts = this.parts.subarray(0, this.joined * PART_FIELDS);
    this.first = undefined;
    this.buffer = undefined;
    this.parts = NO_PARTS;
    if (first === undefined) return undefined;
    if (buffer === undefined) return first;
    buffer.set(this.tail, this.used);
    const size = this.used + this.tail.length;
    const small = keep && 2 * (size + parts.byteLength) < buffer.length;
    const held = small ? ownCopy(buffer.subarray(0, size), parts) : { bytes: buffer.subarray(0, size), parts };
    return {
      bytes: held.bytes,
      sessionId: first.sessionId,
      confinedProcessName: first.confinedProcessName,
      logCount: this.logCount,
      logsEnd: this.used,
      batches: this.batches,
      parts: held.parts,
    };
  }
}

/** `bytes` and `parts` copied into one allocation of their size, the parts after the bytes (4-byte aligned). */
function ownCopy(bytes: Uint8Array, parts: Uint32Array): { bytes: Buffer; parts: Uint32Array } {
  const at = Math.ceil(bytes.length / 4) * 4;
  const buffer = Buffer.allocUnsafeSlow(at + parts.byteLength);
  buffer.set(bytes, 0);
  const copied = new Uint32Array(buffer.buffer, buffer.byteOffset + at, parts.length);
  copied.set(parts);
  return { bytes: buffer.subarray(0, bytes.length), parts: copied };
}

/**
 * A joined call cut between its batches: the longest run of them from the
 * first whose call takes at most `maxBytes`, and the call of the rest;
 * undefined when not even the first fits (or the call was never joined).
 * Log bytes are sliced, never decoded.
 */
export function cutCall(call: LogBatch, maxBytes: number): [LogBatch, LogBatch] | undefined {
  const parts = call.parts;
  if (parts === undefined) return undefined;
  const tail = call.bytes.subarray(call.logsEnd);
  let end = 0;
  let logs = 0;
  let batches = 0;
  let i = 0;
  for (; i < parts.length - PART_FIELDS && parts[i]! + tail.length <= maxBytes; i += PART_FIELDS) {
    end = parts[i]!;
    logs += parts[i + 1]!;
    batches += parts[i + 2]!;
  }
  if (i === 0) return undefined;
  const piece = (from: number, to: number, logCount: number, received: number, rest: Uint32Array | undefined): LogBatch => ({
    bytes: Buffer.concat([call.bytes.subarray(from, to), tail]),
    sessionId: call.sessionId,
    confinedProcessName: call.confinedProcessName,
    logCount,
    logsEnd: to - from,
    batches: received,
    parts: rest,
  });
  const rest = parts.slice(i).map((n, k) => (k % PART_FIELDS === 0 ? n - end : n));
  return [
    piece(0, end, logs, batches, i > PART_FIELDS ? parts.slice(0, i) : undefined),
    piece(end, call.logsEnd, call.logCount - logs, batchesIn(call) - batches, rest.length > PART_FIELDS ? rest : undefined),
  ];
}

const builder = new CallBuilder();

/**
 * The call carrying the batches at the head of `batches` (at least one):
 * the first, then those that follow with its session while the call stays
 * within MAX_CALL_BYTES, in order; `taken` says how many it carries.
 */
export function firstCall(batches: readonly LogBatch[]): { call: LogBatch; taken: number } {
  let taken = 0;
  while (taken < batches.length && builder.add(batches[taken]!)) taken++;
  return { call: builder.take()!, taken };
}
