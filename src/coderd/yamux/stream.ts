import { Duplex } from "node:stream";
import { Flag, FrameType, INITIAL_WINDOW, type Header } from "./frame.js";

/** The error a stream the peer reset ends with (both stream kinds). */
export const RESET_BY_PEER = "yamux: stream reset by peer";

/**
 * Largest Data frame payload written at once: a frame of 64 KiB with its
 * header (agentd's bound; Go's yamux sends up to the peer's whole window in
 * one frame). It is unrelated to WebSocket messages: the coderd link cuts
 * every write into messages of at most WS_MAX_MESSAGE (32767) bytes, so a
 * full frame spans three of them and a message may hold parts of several.
 */
export const MAX_DATA_FRAME = 64 * 1024 - 12;

/** What a stream needs from its session. */
export interface StreamLink {
  /** Queues a frame; returns false when the transport wants the writer to wait for `whenDrained`. */
  /** Queues a frame; `data` may come in parts, which follow the header in order. */
  sendFrame(header: Header, data?: Buffer | readonly Uint8Array[]): boolean;
  /** Queues a frame that may wait briefly to leave with other frames (a finished stream's FIN). */
  sendLazyFrame(header: Header): void;
  /** Runs `fn` once the transport has drained. */
  whenDrained(fn: () => void): void;
  /** Forgets a fully closed stream. */
  forget(id: number): void;
  /** Our FIN is out and the peer's is not in: the stream is reset (closeTimedOut) if it does not come in time. */
  awaitFin(id: number): void;
}

/**
 * One yamux stream as a Node Duplex: writes become Data frames within the
 * peer's window, end() sends FIN, reads grant window back as the consumer
 * drains them, a remote FIN ends the readable side and RST destroys it.
 */
export class YamuxStream extends Duplex {
  private sendWindow = INITIAL_WINDOW;
  private recvWindow = INITIAL_WINDOW;
  /** SYN (we opened it) or ACK (we accepted it) until the first frame carries it. */
  private pendingFlags: number;
  private localClosed = false;
  private remoteClosed = false;
  private wasReset = false;
  private blockedWrite: (() => void) | undefined;

  constructor(
    private readonly link: StreamLink,
    readonly id: number,
    pendingFlags: Flag.SYN | Flag.ACK,
  ) {
    super({ allowHalfOpen: true });
    this.pendingFlags = pendingFlags;
  }

  /** Sends the SYN or ACK at once, as Go's yamux does on Open and Accept. */
  announce(): void {
    this.sendWindowUpdate(true);
  }

  override _read(): void {
    this.sendWindowUpdate(false);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    let offset = 0;
    const send = (): void => {
      this.blockedWrite = undefined;
      if (this.wasReset) return cb(new Error("yamux: stream reset"));
      if (this.localClosed) return cb(new Error("yamux: stream closed"));
      let writable = true;
      while (offset < chunk.length) {
        if (this.sendWindow === 0) {
          this.blockedWrite = send;
          return;
        }
        const n = Math.min(this.sendWindow, chunk.length - offset, MAX_DATA_FRAME);
        const header = { type: FrameType.Data, flags: this.takeFlags(), streamId: this.id, length: n };
        writable = this.link.sendFrame(header, chunk.subarray(offset, offset + n));
        offset += n;
        this.sendWindow -= n;
      }
      if (writable) cb();
      else this.link.whenDrained(() => cb());
    };
    send();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sendFin(false);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.blockedWrite = undefined;
    if (!this.wasReset && !(this.localClosed && this.remoteClosed)) {
      if (err) {
        this.wasReset = true;
        this.link.sendFrame({ type: FrameType.WindowUpdate, flags: Flag.RST, streamId: this.id, length: 0 });
        this.link.forget(this.id);
      } else {
        // Like Go's Close: a half-close; the stream stays known until the peer's FIN.
        // Nobody waits on this FIN (the owner is done), so it may leave with the next frames.
        this.sendFin(true);
      }
    }
    cb(err);
  }

  /** Payload of a Data frame for this stream. Returns false when it overruns the window. */
  receive(data: Buffer): boolean {
    if (data.length > this.recvWindow) return false;
    this.recvWindow -= data.length;
    if (this.destroyed || this.remoteClosed) {
      this.sendWindowUpdate(false);
      return true;
    }
    this.push(data);
    this.sendWindowUpdate(false);
    return true;
  }

  /** A window update's delta from the peer. */
  grant(delta: number): void {
    this.sendWindow += delta;
    if (delta > 0) this.blockedWrite?.();
  }

  /** ACK, FIN and RST from the peer (SYN and the wait for an ACK are the session's business). */
  applyFlags(flags: number): void {
    if (flags & Flag.RST) {
      this.wasReset = true;
      this.remoteClosed = true;
      this.link.forget(this.id);
      this.destroy(new Error(RESET_BY_PEER));
      return;
    }
    if (flags & Flag.FIN && !this.remoteClosed) {
      this.remoteClosed = true;
      if (this.localClosed) this.link.forget(this.id);
      this.push(null);
    }
  }

  /** The session is gone: end whatever is still open, with `err` when it did not close normally. */
  abort(err: Error | undefined): void {
    this.wasReset = true;
    this.blockedWrite?.();
    this.destroy(err);
  }

  private sendFin(lazy: boolean): void {
    if (this.localClosed || this.wasReset) return;
    this.localClosed = true;
    const header = { type: FrameType.WindowUpdate, flags: this.takeFlags() | Flag.FIN, streamId: this.id, length: 0 };
    if (lazy) this.link.sendLazyFrame(header);
    else this.link.sendFrame(header);
    if (this.remoteClosed) this.link.forget(this.id);
    else this.link.awaitFin(this.id);
  }

  /** The peer never sent its FIN: forget the stream and reset it so the peer lets go too. */
  closeTimedOut(): void {
    if (this.remoteClosed || this.wasReset) return;
    this.wasReset = true;
    this.link.forget(this.id);
    this.link.sendFrame({ type: FrameType.WindowUpdate, flags: Flag.RST, streamId: this.id, length: 0 });
    this.destroy();
  }

  private takeFlags(): number {
    const flags = this.pendingFlags;
    this.pendingFlags = 0;
    return flags;
  }

  /** Grants back what the consumer has taken, once that is at least half the window (as Go's yamux). */
  private sendWindowUpdate(force: boolean): void {
    if (this.wasReset || (this.remoteClosed && !force)) return;
    const buffered = this.destroyed ? 0 : this.readableLength;
    const delta = INITIAL_WINDOW - buffered - this.recvWindow;
    if (!force && delta < INITIAL_WINDOW / 2) return;
    this.recvWindow += delta;
    this.link.sendFrame({ type: FrameType.WindowUpdate, flags: this.takeFlags(), streamId: this.id, length: delta });
  }
}
