/**
 * yamux framing (hashicorp/yamux spec.md): a 12-byte big-endian header of
 * version, type, flags, stream id and length, followed by `length` bytes of
 * data for Data frames only.
 */

/** The only protocol version yamux defines. */
export const YAMUX_VERSION = 0;
/** Size of every frame header. */
export const HEADER_BYTES = 12;
/** Every stream starts with this receive window (spec.md "Flow Control": 256KB). */
export const INITIAL_WINDOW = 256 * 1024;

/** Frame types (spec.md "Type Field"). */
export enum FrameType {
  Data = 0,
  WindowUpdate = 1,
  Ping = 2,
  GoAway = 3,
}

/** Flag bits (spec.md "Flag Field"). */
export enum Flag {
  SYN = 1,
  ACK = 2,
  FIN = 4,
  RST = 8,
}

/** Go Away codes (spec.md "Session termination"). */
export enum GoAwayCode {
  Normal = 0,
  ProtocolError = 1,
  InternalError = 2,
}

/** A decoded frame header (the version byte is checked, not kept). */
export interface Header {
  type: FrameType;
  flags: number;
  streamId: number;
  /** Data: payload bytes; WindowUpdate: window delta; Ping: opaque value; GoAway: code. */
  length: number;
}

/** A violation of the yamux framing; the session carrying it is unusable. */
export class YamuxProtocolError extends Error {
  constructor(message: string) {
    super(`yamux: ${message}`);
    this.name = "YamuxProtocolError";
  }
}

/** Encodes a frame header. */
export function encodeHeader(h: Header): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES);
  buf[0] = YAMUX_VERSION;
  buf[1] = h.type;
  buf.writeUInt16BE(h.flags, 2);
  buf.writeUInt32BE(h.streamId, 4);
  buf.writeUInt32BE(h.length, 8);
  return buf;
}

/** What the reader holds between chunks when nothing is left over. */
const EMPTY = Buffer.alloc(0);

/** What a FrameReader hands out: a header, or a piece of the current Data frame's payload. */
export type FrameEvent = { header: Header } | { streamId: number; data: Buffer; last: boolean };

/**
 * Splits a byte stream into frame headers and payload pieces. A Data
 * frame's payload is handed out as it arrives (no copying, no waiting for
 * the whole frame); `maxData` bounds the payload a header may announce.
 */
export class FrameReader {
  private pending: Buffer = EMPTY;
  private dataLeft = 0;
  private dataStream = 0;

  constructor(private readonly maxData: number) {}

  /** Adds bytes as they arrive and returns the headers and payload pieces they hold, in order. */
  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.dataLeft > 0) {
        if (buf.length === 0) break;
        const piece = buf.length <= this.dataLeft ? buf : buf.subarray(0, this.dataLeft);
        this.dataLeft -= piece.length;
        buf = buf.subarray(piece.length);
        events.push({ streamId: this.dataStream, data: piece, last: this.dataLeft === 0 });
        continue;
      }
      if (buf.length < HEADER_BYTES) break;
      const header = decodeHeader(buf);
      if (header.type === FrameType.Data && header.length > this.maxData) {
        throw new YamuxProtocolError(`data frame of ${header.length} bytes exceeds the window`);
      }
      buf = buf.subarray(HEADER_BYTES);
      events.push({ header });
      if (header.type === FrameType.Data) {
        this.dataLeft = header.length;
        this.dataStream = header.streamId;
      }
    }
    this.pending = buf.length === 0 ? EMPTY : Buffer.from(buf);
    return events;
  }
}

function decodeHeader(buf: Buffer): Header {
  if (buf[0] !== YAMUX_VERSION) throw new YamuxProtocolError(`invalid protocol version ${buf[0]}`);
  const type = buf[1] as number;
  if (type > FrameType.GoAway) throw new YamuxProtocolError(`invalid message type ${type}`);
  return { type, flags: buf.readUInt16BE(2), streamId: buf.readUInt32BE(4), length: buf.readUInt32BE(8) };
}
