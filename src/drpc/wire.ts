/**
 * dRPC's wire format (storj.io/drpc/drpcwire): frames of
 * `control | varint stream | varint message | varint length | data`,
 * reassembled into packets.
 */

/** Packet kinds (drpcwire.Kind). */
export enum Kind {
  Invoke = 1,
  Message = 2,
  Error = 3,
  Cancel = 4,
  Close = 5,
  CloseSend = 6,
  InvokeMetadata = 7,
}

/** Largest packet accepted (drpcsdk.MaxMessageSize, the reader's default buffer). */
export const MAX_PACKET_BYTES = 4 << 20;
/** Largest frame data a writer emits before splitting (drpcwire's default split size). */
export const SPLIT_BYTES = 64 << 10;
/** A varint longer than this many bytes overflows 64 bits. */
const MAX_VARINT_BYTES = 10;

/** One frame: a piece of a packet, as it is on the wire. */
export interface Frame {
  kind: Kind;
  streamId: number;
  messageId: number;
  /** The packet's last frame (control bit 0). */
  done: boolean;
  /** Control bit 7: readers skip such frames. */
  control: boolean;
  data: Uint8Array;
}

/** A whole packet: the frames of one (stream, message) id joined. */
export interface Packet {
  kind: Kind;
  streamId: number;
  messageId: number;
  data: Uint8Array;
}

/** A violation of the wire format; the connection carrying it is unusable. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(`protocol error: ${message}`);
    this.name = "ProtocolError";
  }
}

/** Bytes of `n` as a protobuf varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` as a protobuf varint at `at`; returns the offset after it. */
export function putVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** Bytes one frame takes on the wire. */
function frameSize(streamId: number, messageId: number, length: number): number {
  return 1 + varintSize(streamId) + varintSize(messageId) + varintSize(length) + length;
}

/** Writes a frame's header (its data of `length` bytes follow it) into `buf` at `at`; returns the offset after it. */
function writeHeader(buf: Buffer, at: number, control: number, streamId: number, messageId: number, length: number): number {
  buf[at] = control;
  at = putVarint(buf, at + 1, streamId);
  at = putVarint(buf, at, messageId);
  return putVarint(buf, at, length);
}

/** Writes one frame into `buf` at `at`; returns the offset after it. */
function writeFrame(buf: Buffer, at: number, control: number, streamId: number, messageId: number, data: Uint8Array): number {
  at = writeHeader(buf, at, control, streamId, messageId, data.length);
  if (data.length > 0) buf.set(data, at);
  return at + data.length;
}

/** The control byte: done bit 0, kind in bits 1–6, control bit 7. */
function controlByte(kind: Kind, done: boolean, control: boolean): number {
  return (done ? 1 : 0) | ((kind & 0x3f) << 1) | (control ? 0x80 : 0);
}

/** The header of the one frame a packet of 1 to SPLIT_BYTES data bytes takes: its data follow it on the wire. */
export function frameHeader(p: Packet): Buffer {
  const buf = Buffer.allocUnsafe(frameSize(p.streamId, p.messageId, p.data.length) - p.data.length);
  writeHeader(buf, 0, controlByte(p.kind, true, false), p.streamId, p.messageId, p.data.length);
  return buf;
}

/** Encodes one frame into a single buffer. */
export function encodeFrame(f: Frame): Buffer {
  const buf = Buffer.allocUnsafe(frameSize(f.streamId, f.messageId, f.data.length));
  writeFrame(buf, 0, controlByte(f.kind, f.done, f.control), f.streamId, f.messageId, f.data);
  return buf;
}

/** Bytes a packet takes once split into frames of at most SPLIT_BYTES (an empty packet is one empty frame). */
function packetSize(p: Packet): number {
  const frames = Math.max(1, Math.ceil(p.data.length / SPLIT_BYTES));
  const last = p.data.length - (frames - 1) * SPLIT_BYTES;
  return (frames - 1) * frameSize(p.streamId, p.messageId, SPLIT_BYTES) + frameSize(p.streamId, p.messageId, last);
}

/** Writes a packet as frames of at most SPLIT_BYTES data, the last one marked done; returns the offset after it. */
function writePacket(buf: Buffer, at: number, p: Packet): number {
  let from = 0;
  do {
    const to = Math.min(from + SPLIT_BYTES, p.data.length);
    const data = from === 0 && to === p.data.length ? p.data : p.data.subarray(from, to);
    at = writeFrame(buf, at, controlByte(p.kind, to >= p.data.length, false), p.streamId, p.messageId, data);
    from = to;
  } while (from < p.data.length);
  return at;
}

/** Encodes a packet as frames of at most SPLIT_BYTES data, the last one marked done. */
export function encodePacket(p: Packet): Buffer {
  return encodePackets([p]);
}

/** Encodes several packets into one buffer, so that they can leave in one write. */
export function encodePackets(packets: Packet[]): Buffer {
  let size = 0;
  for (const p of packets) size += packetSize(p);
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  for (const p of packets) at = writePacket(buf, at, p);
  return buf;
}

/** What the reader holds between chunks when nothing is left over. */
const EMPTY = Buffer.alloc(0);

/** Frame fields as the reader parses them, before they become part of a packet. */
interface RawFrame {
  control: number;
  streamId: number;
  messageId: number;
  data: Buffer;
}

/**
 * Turns a byte stream into packets. Feed it chunks as they arrive; it
 * returns every packet they complete. Throws ProtocolError on bad input,
 * after which the stream must be abandoned. A packet that arrived whole in
 * one frame within one chunk is a view of that chunk; one split over frames,
 * or a frame split over chunks, is joined into a copy.
 */
export class PacketReader {
  private buf: Buffer = EMPTY;
  private streamId = 1;
  private messageId = 1;
  /** Where the last readVarint stopped; -1 when the buffer ended first. */
  private next = 0;
  private current: { kind: Kind; streamId: number; messageId: number; parts: Buffer[]; size: number } | undefined;

  /** Adds bytes as they arrive and returns the packets they complete, in order. */
  push(chunk: Buffer): Packet[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const packets: Packet[] = [];
    let at = 0;
    for (;;) {
      const frame = this.frameAt(at);
      if (!frame) break;
      at = this.next;
      const packet = this.addFrame(frame);
      if (packet) packets.push(packet);
    }
    this.buf = at === this.buf.length ? EMPTY : this.buf.subarray(at);
    if (this.buf.length > MAX_PACKET_BYTES + 64) throw new ProtocolError("data overflow");
    return packets;
  }

  /** Reads a varint at `at` into the return value, setting `next`; -1 when the buffer ends first. */
  private readVarint(at: number): number {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (at + i >= buf.length) {
        this.next = -1;
        return -1;
      }
      const b = buf[at + i] as number;
      if (i === MAX_VARINT_BYTES - 1 && b > 1) throw new ProtocolError("varint too long");
      value += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) {
        this.next = at + i + 1;
        return value;
      }
    }
    throw new ProtocolError("varint too long");
  }

  /** The frame starting at `at`, with `next` set past it; undefined when it has not fully arrived. */
  private frameAt(at: number): RawFrame | undefined {
    const buf = this.buf;
    if (buf.length - at < 4) return undefined;
    const streamId = this.readVarint(at + 1);
    const messageId = this.next < 0 ? -1 : this.readVarint(this.next);
    const length = this.next < 0 ? -1 : this.readVarint(this.next);
    if (length < 0) return undefined;
    if (length > MAX_PACKET_BYTES) throw new ProtocolError("data overflow");
    const start = this.next;
    const end = start + length;
    if (buf.length < end) return undefined;
    this.next = end;
    return { control: buf[at] as number, streamId, messageId, data: buf.subarray(start, end) };
  }

  private addFrame(f: RawFrame): Packet | undefined {
    if (f.control & 0x80) return undefined;
    const kind = ((f.control >> 1) & 0x3f) as Kind;
    if (f.streamId < this.streamId || (f.streamId === this.streamId && f.messageId < this.messageId)) {
      throw new ProtocolError("id monotonicity violation");
    }
    let cur = this.current;
    if (!cur || f.streamId !== this.streamId || f.messageId !== this.messageId) {
      this.streamId = f.streamId;
      this.messageId = f.messageId;
      cur = this.current = { kind, streamId: f.streamId, messageId: f.messageId, parts: [], size: 0 };
    } else if (kind !== cur.kind) {
      throw new ProtocolError("packet kind change");
    }
    cur.parts.push(f.data);
    cur.size += f.data.length;
    if (cur.size > MAX_PACKET_BYTES) throw new ProtocolError("data overflow");
    if (!(f.control & 1)) return undefined;
    this.current = undefined;
    this.messageId++;
    const data = cur.parts.length === 1 ? (cur.parts[0] as Buffer) : Buffer.concat(cur.parts);
    return { kind: cur.kind, streamId: cur.streamId, messageId: cur.messageId, data };
  }
}

/** dRPC's error payload: an 8-byte big-endian code, then the message text. */
export function encodeError(code: number, message: string): Buffer {
  const text = Buffer.from(message, "utf8");
  const buf = Buffer.allocUnsafe(8 + text.length);
  buf.writeBigUInt64BE(BigInt(code), 0);
  text.copy(buf, 8);
  return buf;
}

/** Reads an error payload; fewer than 8 bytes is plain text with code 0. */
export function decodeError(data: Uint8Array): { code: number; message: string } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 8) return { code: 0, message: buf.toString("utf8") };
  const code = buf.readBigUInt64BE(0);
  return { code: code > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(code), message: buf.toString("utf8", 8) };
}
