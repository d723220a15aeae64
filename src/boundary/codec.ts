import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import {
  BoundaryMessageSchema,
  BoundaryStatusSchema,
  type BoundaryStatus,
} from "../../gen/coder/boundarylogproxy/codec/v1/boundary_pb.js";
import { decodeLogBatch, logBatchOf, type LogBatch } from "./log-batch.js";
import { walked, WireWalker } from "./wire-check.js";

/** Bytes in a frame header: one big-endian uint32 (codec.go). */
export const HEADER_SIZE = 4;
/** Tag of a bare ReportBoundaryLogsRequest, sent by legacy boundaries (codec.go TagV1). */
export const TAG_V1 = 1;
/** Tag of a BoundaryMessage envelope (codec.go TagV2). */
export const TAG_V2 = 2;
/** Largest payload either tag may carry; equal is allowed (codec.go MaxMessageSize = 1<<15). */
export const MAX_MESSAGE_SIZE = 1 << 15;
/** Tag of `logs` in the BoundaryMessage oneof (boundary.proto): field 1, length-delimited. */
const ENVELOPE_LOGS_TAG = (1 << 3) | 2;
/** The low 24 header bits carry the payload length (codec.go). */
const LENGTH_MASK = 0x00ff_ffff;

/** Error text for a header whose tag is neither TagV1 nor TagV2 (codec.go ErrUnsupportedTag). */
export const ERR_UNSUPPORTED_TAG = "unsupported tag";
/** Error text for a header whose length exceeds MAX_MESSAGE_SIZE (codec.go ErrMessageTooLarge). */
export const ERR_MESSAGE_TOO_LARGE = "message too large";

/** A framing error after which the stream cannot be trusted; the connection must close. */
export class FrameError extends Error {
  constructor(message: typeof ERR_UNSUPPORTED_TAG | typeof ERR_MESSAGE_TOO_LARGE) {
    super(message);
    this.name = "FrameError";
  }
}

/** One frame as read off the socket: its tag and payload bytes. */
export interface Frame {
  tag: number;
  payload: Uint8Array;
}

/** What a frame's payload means to the proxy. */
export type BoundaryFrameMessage =
  | { kind: "logs"; batch: LogBatch }
  | { kind: "status"; status: BoundaryStatus }
  | { kind: "unknown" };

function isSupportedTag(tag: number): boolean {
  return tag === TAG_V1 || tag === TAG_V2;
}

/**
 * One frame's bytes: header `tag<<24 | len` then the payload. Throws, having
 * produced nothing, for an unknown tag or a payload over MAX_MESSAGE_SIZE.
 */
export function encodeFrame(tag: number, payload: Uint8Array): Buffer {
  if (!isSupportedTag(tag)) throw new FrameError(ERR_UNSUPPORTED_TAG);
  if (payload.length > MAX_MESSAGE_SIZE) throw new FrameError(ERR_MESSAGE_TOO_LARGE);
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  frame.writeUInt32BE(((tag << 24) | payload.length) >>> 0, 0);
  frame.set(payload, HEADER_SIZE);
  return frame;
}

/** A logs frame: TagV1 carries the bare request, TagV2 wraps it in a BoundaryMessage. */
export function encodeLogsFrame(
  request: MessageInitShape<typeof ReportBoundaryLogsRequestSchema>,
  tag: typeof TAG_V1 | typeof TAG_V2 = TAG_V2,
): Buffer {
  const req = create(ReportBoundaryLogsRequestSchema, request);
  if (tag === TAG_V1) return encodeFrame(TAG_V1, toBinary(ReportBoundaryLogsRequestSchema, req));
  const envelope = create(BoundaryMessageSchema, { msg: { case: "logs", value: req } });
  return encodeFrame(TAG_V2, toBinary(BoundaryMessageSchema, envelope));
}

/** A TagV2 status frame carrying boundary's own drop counters. */
export function encodeStatusFrame(status: MessageInitShape<typeof BoundaryStatusSchema>): Buffer {
  const envelope = create(BoundaryMessageSchema, {
    msg: { case: "status", value: create(BoundaryStatusSchema, status) },
  });
  return encodeFrame(TAG_V2, toBinary(BoundaryMessageSchema, envelope));
}

/** Reads the length after the envelope's tag: one walker and one walk serve every frame (the walk is synchronous). */
const envelope = new WireWalker(new Uint8Array(0));
let envelopeEnd = -1;
const walkEnvelopeLength = (): void => {
  envelopeEnd = envelope.length(envelope.bytes.length);
};

/**
 * Where the request bytes start in a TagV2 payload that is exactly one
 * `logs` field (what boundary writes); -1 for any other shape, which the
 * general decoder handles (repeated or mixed oneof fields merge by protobuf
 * rules). Reads the one-byte tag and the length in place.
 */
function soleLogsStart(payload: Uint8Array): number {
  if (payload.length < 2 || payload[0] !== ENVELOPE_LOGS_TAG) return -1;
  envelope.reset(payload).pos = 1;
  return walked(walkEnvelopeLength) && envelopeEnd === payload.length ? envelope.pos : -1;
}

/**
 * Decodes a frame's payload by its tag; throws on bytes that are not the
 * expected protobuf. A logs batch's bytes are a view of the payload, never
 * decoded into log objects when they are plain: a reader that keeps them
 * past its turn copies them (see LogBatch).
 */
export function decodeFrameMessage(frame: Frame): BoundaryFrameMessage {
  if (frame.tag === TAG_V1) return { kind: "logs", batch: decodeLogBatch(frame.payload) };
  const start = soleLogsStart(frame.payload);
  if (start >= 0) return { kind: "logs", batch: decodeLogBatch(frame.payload.subarray(start)) };
  const envelope = fromBinary(BoundaryMessageSchema, frame.payload);
  switch (envelope.msg.case) {
    case "logs":
      return { kind: "logs", batch: logBatchOf(envelope.msg.value) };
    case "status":
      return { kind: "status", status: envelope.msg.value };
    default:
      return { kind: "unknown" };
  }
}

/**
 * Splits a byte stream into frames, in the reader order of codec.go: the tag
 * is checked before the length, the length before the body is awaited.
 * Chunks are kept as received; a frame's bytes are copied only when it
 * straddles chunks, so a large backlog is never re-concatenated.
 */
export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  /** The tag and length of the frame whose header has been read (-1: none). */
  private pendingTag = -1;
  private pendingLength = 0;

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Adds received bytes. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next complete frame, or undefined when more bytes are needed.
   * Throws FrameError on a bad header; the stream is unusable after that.
   */
  next(): Frame | undefined {
    if (this.pendingTag < 0) {
      if (this.buffered < HEADER_SIZE) return undefined;
      const header = this.takeHeader();
      const tag = header >>> 24;
      const length = header & LENGTH_MASK;
      if (!isSupportedTag(tag)) throw new FrameError(ERR_UNSUPPORTED_TAG);
      if (length > MAX_MESSAGE_SIZE) throw new FrameError(ERR_MESSAGE_TOO_LARGE);
      this.pendingTag = tag;
      this.pendingLength = length;
    }
    if (this.buffered < this.pendingLength) return undefined;
    const frame = { tag: this.pendingTag, payload: this.take(this.pendingLength) };
    this.pendingTag = -1;
    return frame;
  }

  /** Removes and returns the big-endian header (HEADER_SIZE <= buffered), read in place. */
  private takeHeader(): number {
    const first = this.chunks[0]!;
    if (first.length - this.head >= HEADER_SIZE) {
      const header = first.readUInt32BE(this.head);
      this.consume(HEADER_SIZE);
      return header;
    }
    let header = 0;
    for (let i = 0; i < HEADER_SIZE; i++) {
      header = header * 256 + this.chunks[0]![this.head]!;
      this.consume(1);
    }
    return header;
  }

  /** Removes and returns exactly `n` buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0 || first === undefined) return Buffer.alloc(0);
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(n - written, chunk.length - this.head);
      chunk.copy(out, written, this.head, this.head + count);
      written += count;
      this.consume(count);
    }
    return out;
  }

  private consume(n: number): void {
    this.head += n;
    this.buffered -= n;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
