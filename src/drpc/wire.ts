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

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function putVarint(buf: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** Encodes one frame into a single buffer. */
export function encodeFrame(f: Frame): Buffer {
  const size = 1 + varintSize(f.streamId) + varintSize(f.messageId) + varintSize(f.data.length) + f.data.length;
  const buf = Buffer.allocUnsafe(size);
  buf[0] = (f.done ? 1 : 0) | ((f.kind & 0x3f) << 1) | (f.control ? 0x80 : 0);
  let at = putVarint(buf, 1, f.streamId);
  at = putVarint(buf, at, f.messageId);
  at = putVarint(buf, at, f.data.length);
  buf.set(f.data, at);
  return buf;
}

/** Encodes a packet as frames of at most SPLIT_BYTES data, the last one marked done. */
export function encodePacket(p: Packet): Buffer {
  if (p.data.length <= SPLIT_BYTES) return encodeFrame({ ...p, done: true, control: false });
  const frames: Buffer[] = [];
  for (let at = 0; at < p.data.length; at += SPLIT_BYTES) {
    const data = p.data.subarray(at, at + SPLIT_BYTES);
    frames.push(encodeFrame({ ...p, data, done: at + SPLIT_BYTES >= p.data.length, control: false }));
  }
  return Buffer.concat(frames);
}

/** Reads a varint at `at`; undefined when the buffer ends first. */
function readVarint(buf: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (at + i >= buf.length) return undefined;
    const b = buf[at + i] as number;
    if (i === MAX_VARINT_BYTES - 1 && b > 1) throw new ProtocolError("varint too long");
    value += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) return { value, next: at + i + 1 };
  }
  throw new ProtocolError("varint too long");
}

/**
 * Turns a byte stream into packets. Feed it chunks as they arrive; it
 * returns every packet they complete. Throws ProtocolError on bad input,
 * after which the stream must be abandoned.
 */
export class PacketReader {
  private buf: Buffer = Buffer.alloc(0);
  private id = { stream: 1, message: 1 };
  private current: { kind: Kind; streamId: number; messageId: number; parts: Buffer[]; size: number } | undefined;

  /** Adds bytes as they arrive and returns the packets they complete, in order. */
  push(chunk: Buffer): Packet[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const packets: Packet[] = [];
    for (;;) {
      const frame = this.nextFrame();
      if (!frame) break;
      const packet = this.addFrame(frame);
      if (packet) packets.push(packet);
    }
    if (this.buf.length > MAX_PACKET_BYTES + 64) throw new ProtocolError("data overflow");
    return packets;
  }

  private nextFrame(): { control: number; streamId: number; messageId: number; data: Buffer } | undefined {
    const buf = this.buf;
    if (buf.length < 4) return undefined;
    const stream = readVarint(buf, 1);
    const message = stream && readVarint(buf, stream.next);
    const length = message && readVarint(buf, message.next);
    if (!length) return undefined;
    if (length.value > MAX_PACKET_BYTES) throw new ProtocolError("data overflow");
    const end = length.next + length.value;
    if (buf.length < end) return undefined;
    this.buf = buf.subarray(end);
    return {
      control: buf[0] as number,
      streamId: stream.value,
      messageId: message.value,
      data: buf.subarray(length.next, end),
    };
  }

  private addFrame(f: { control: number; streamId: number; messageId: number; data: Buffer }): Packet | undefined {
    if (f.control & 0x80) return undefined;
    const kind = ((f.control >> 1) & 0x3f) as Kind;
    const { stream, message } = this.id;
    if (f.streamId < stream || (f.streamId === stream && f.messageId < message)) {
      throw new ProtocolError("id monotonicity violation");
    }
    let cur = this.current;
    if (!cur || f.streamId !== stream || f.messageId !== message) {
      this.id = { stream: f.streamId, message: f.messageId };
      cur = this.current = { kind, streamId: f.streamId, messageId: f.messageId, parts: [], size: 0 };
    } else if (kind !== cur.kind) {
      throw new ProtocolError("packet kind change");
    }
    cur.parts.push(Buffer.from(f.data));
    cur.size += f.data.length;
    if (cur.size > MAX_PACKET_BYTES) throw new ProtocolError("data overflow");
    if (!(f.control & 1)) return undefined;
    this.current = undefined;
    this.id.message++;
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
