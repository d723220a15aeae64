import type { CallSink, CallStream } from "../../drpc/transport.js";
import { Flag, FrameType, INITIAL_WINDOW } from "./frame.js";
import { MAX_DATA_FRAME, RESET_BY_PEER, type StreamLink } from "./stream.js";

/** What a session needs of each stream it holds: frames from the peer, and its own end. */
export interface SessionStream {
  readonly id: number;
  /** Sends the SYN or ACK at once, as Go's yamux does on Open and Accept. */
  announce(): void;
  /** Payload of a Data frame for this stream. Returns false when it overruns the window. */
  receive(data: Buffer): boolean;
  /** A window update's delta from the peer. */
  grant(delta: number): void;
  /** ACK, FIN and RST from the peer. */
  applyFlags(flags: number): void;
  /** The session is gone. */
  abort(err: Error | undefined): void;
  /** The peer never sent its FIN after ours. */
  closeTimedOut(): void;
}

/**
 * A stream we open for one call (request out, reply in) without a Node
 * Duplex: the reply bytes go straight to the call's sink as they arrive,
 * so the receive window is granted back as soon as half of it is used.
 * On the wire it is exactly a YamuxStream used the same way: SYN window
 * update, Data frames within the peer's window, our FIN when the call is
 * over, RST when the peer's FIN never comes. The session is the same; a
 * thousand calls a second save the stream machinery (buffers, events,
 * ticks) of a Duplex each.
 */
export class YamuxCall implements SessionStream, CallStream {
  private sendWindow = INITIAL_WINDOW;
  private recvWindow = INITIAL_WINDOW;
  private pendingFlags: number = Flag.SYN;
  private localClosed = false;
  private remoteClosed = false;
  private wasReset = false;
  /** Bytes written that wait for the peer's window. */
  private unsent: Buffer | undefined;
  private sink: CallSink | undefined;
  /** The reply side ended before anyone listened (the session went while the call was being set up). */
  private endedEarly: { err: Error | undefined } | undefined;
  private closed = false;

  constructor(
    private readonly link: StreamLink,
    readonly id: number,
  ) {}

  announce(): void {
    this.link.sendFrame({ type: FrameType.WindowUpdate, flags: this.takeFlags(), streamId: this.id, length: 0 });
  }

  listen(sink: CallSink): void {
    const early = this.endedEarly;
    this.endedEarly = undefined;
    if (early) sink.end(early.err);
    else this.sink = sink;
  }

  write(parts: readonly Uint8Array[]): void {
    if (this.wasReset || this.localClosed) return;
    let size = 0;
    for (const part of parts) size += part.length;
    if (!this.unsent && size > 0 && size <= this.sendWindow && size <= MAX_DATA_FRAME) {
      // The usual request: one Data frame whose parts are queued as they are, joined only in the session's one write.
      this.sendWindow -= size;
      this.link.sendFrame({ type: FrameType.Data, flags: this.takeFlags(), streamId: this.id, length: size }, parts);
      return;
    }
    const data = parts.length === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, size) : Buffer.concat(parts, size);
    this.unsent = this.unsent ? Buffer.concat([this.unsent, data]) : data;
    this.sendUnsent();
  }

  close(): void {
    this.closed = true;
    this.sink = undefined;
    this.unsent = undefined;
    if (this.wasReset || this.localClosed) return;
    // Like Go's Close: a half-close; the stream stays known until the peer's FIN.
    // Nobody waits on this FIN (the call is over), so it may leave with the next frames.
    this.localClosed = true;
    this.link.sendLazyFrame({ type: FrameType.WindowUpdate, flags: this.takeFlags() | Flag.FIN, streamId: this.id, length: 0 });
    if (this.remoteClosed) this.link.forget(this.id);
    else this.link.awaitFin(this.id);
  }

  receive(data: Buffer): boolean {
    if (data.length > this.recvWindow) return false;
    this.recvWindow -= data.length;
    if (!this.remoteClosed) this.sink?.data(data);
    // Taken at once: grant it back once that is half the window (as Go's yamux).
    const delta = INITIAL_WINDOW - this.recvWindow;
    if (!this.wasReset && !this.remoteClosed && delta >= INITIAL_WINDOW / 2) {
      this.recvWindow = INITIAL_WINDOW;
      this.link.sendFrame({ type: FrameType.WindowUpdate, flags: this.takeFlags(), streamId: this.id, length: delta });
    }
    return true;
  }

  grant(delta: number): void {
    this.sendWindow += delta;
    if (delta > 0 && this.unsent) this.sendUnsent();
  }

  applyFlags(flags: number): void {
    if (flags & Flag.RST) {
      this.wasReset = true;
      this.remoteClosed = true;
      this.link.forget(this.id);
      this.lost(new Error(RESET_BY_PEER));
      return;
    }
    if (flags & Flag.FIN && !this.remoteClosed) {
      this.remoteClosed = true;
      if (this.localClosed) this.link.forget(this.id);
      this.lost(undefined);
    }
  }

  abort(err: Error | undefined): void {
    this.wasReset = true;
    this.lost(err);
  }

  closeTimedOut(): void {
    if (this.remoteClosed || this.wasReset) return;
    this.wasReset = true;
    this.link.forget(this.id);
    this.link.sendFrame({ type: FrameType.WindowUpdate, flags: Flag.RST, streamId: this.id, length: 0 });
  }

  /** The reply side ended (FIN, RST, session gone): tells the call once. */
  private lost(err: Error | undefined): void {
    const sink = this.sink;
    this.sink = undefined;
    this.unsent = undefined;
    if (sink) sink.end(err);
    else if (!this.closed) this.endedEarly = { err };
  }

  /** Sends what the peer's window takes of `unsent`, in frames of at most MAX_DATA_FRAME. */
  private sendUnsent(): void {
    let data = this.unsent!;
    while (data.length > 0 && this.sendWindow > 0) {
      const n = Math.min(this.sendWindow, data.length, MAX_DATA_FRAME);
      this.link.sendFrame({ type: FrameType.Data, flags: this.takeFlags(), streamId: this.id, length: n }, data.subarray(0, n));
      this.sendWindow -= n;
      data = data.subarray(n);
    }
    this.unsent = data.length > 0 ? data : undefined;
  }

  private takeFlags(): number {
    const flags = this.pendingFlags;
    this.pendingFlags = 0;
    return flags;
  }
}
