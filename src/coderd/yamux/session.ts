import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import {
  encodeHeader,
  Flag,
  HEADER_BYTES,
  FrameReader,
  FrameType,
  GoAwayCode,
  INITIAL_WINDOW,
  YamuxProtocolError,
  type Header,
} from "./frame.js";
import { WS_MAX_MESSAGE } from "../websocket-stream.js";
import { Deadlines } from "./deadlines.js";
import { YamuxCall, type SessionStream } from "./call.js";
import { YamuxStream, type StreamLink } from "./stream.js";

/** hashicorp/yamux DefaultConfig KeepAliveInterval. */
export const KEEPALIVE_INTERVAL_MS = 30_000;
/** hashicorp/yamux DefaultConfig ConnectionWriteTimeout, which also bounds a keepalive ping's answer. */
export const KEEPALIVE_TIMEOUT_MS = 10_000;
/** hashicorp/yamux DefaultConfig StreamOpenTimeout: a stream we open must be ACKed within this, else the session closes. */
export const STREAM_OPEN_TIMEOUT_MS = 75_000;
/** hashicorp/yamux DefaultConfig StreamCloseTimeout: how long a half-closed stream waits for the peer's FIN before a RST. */
export const STREAM_CLOSE_TIMEOUT_MS = 5 * 60_000;
/**
 * Streams of ours the peer may not have acknowledged yet before opening more
 * waits: Go's client blocks OpenStream at its AcceptBacklog (256), the size of
 * the peer's accept backlog, past which the peer resets new streams.
 */
export const MAX_UNACKED_OPENS = 256;
/** Streams the peer may hold open at once; past it new ones are reset (Go's AcceptBacklog is 256 un-accepted). */
export const MAX_INBOUND_STREAMS = 1024;
/**
 * Queued frame bytes past which they are written at once rather than at the
 * end of the turn: half a WebSocket message of the coderd link
 * (WS_MAX_MESSAGE). Small frames (acknowledgements, window updates, a small
 * call) gain from sharing the turn's one write; frames this large gain
 * nothing from waiting, and the rest of a busy turn (reading boundary's
 * sockets, say) would delay them (agentd's own bound).
 */
const FLUSH_BYTES = Math.ceil(WS_MAX_MESSAGE / 2);
/**
 * Longest a FIN of a stream its owner has destroyed (a finished call) waits
 * for other frames to travel with, so a call's FIN leaves with the next
 * call's frames instead of costing a write and a peer wake-up of its own
 * (agentd's choice: well under any yamux timeout).
 */
export const LAZY_FRAME_MS = 20;

/** How a YamuxSession behaves: its side, how it accepts streams, its keepalive. */
export interface YamuxSessionOptions {
  /** The client opens odd stream ids, the server even ones (spec.md "StreamID Field"). */
  client: boolean;
  /** Called for every stream the peer opens; without it such streams are reset. */
  onStream?: (stream: YamuxStream) => void;
  /** Ping interval; 0 turns keepalive off. */
  keepAliveIntervalMs?: number;
  /** How long a ping may go unanswered before the session is closed. */
  keepAliveTimeoutMs?: number;
  /** How long a stream we open may wait for the peer's ACK before the session is closed; 0 = forever. */
  streamOpenTimeoutMs?: number;
  /** How long a stream may wait for the peer's FIN after ours before it is reset; 0 = forever. */
  streamCloseTimeoutMs?: number;
}

interface Ping {
  resolve: (rttMs: number) => void;
  reject: (err: Error) => void;
  sent: number;
  timer: NodeJS.Timeout;
}

interface Events {
  /** The session ended; `err` says why when it was not a normal close. */
  close: [Error | undefined];
  /** The peer said Go Away (normal): it accepts no new streams; those open may finish. */
  goAway: [];
}

/**
 * A yamux session over any byte stream (a WebSocket, a socket): opens and
 * accepts streams, answers and sends keepalive pings, and tears every
 * stream down when the transport goes away.
 */
export class YamuxSession extends EventEmitter<Events> implements StreamLink {
  private readonly streams = new Map<number, SessionStream>();
  private readonly reader = new FrameReader(INITIAL_WINDOW);
  private readonly pings = new Map<number, Ping>();
  /** Streams we opened that the peer has neither acknowledged nor reset. */
  private readonly unacked = new Set<number>();
  /** Those of `unacked` the peer must acknowledge in time (Go's StreamOpenTimeout), else the session closes. */
  private readonly ackDeadlines: Deadlines | undefined;
  /** Streams that sent their FIN and wait for the peer's (Go's StreamCloseTimeout), else they are reset. */
  private readonly finDeadlines: Deadlines | undefined;
  /** openStream and openCall calls waiting for an unacknowledged stream to settle; each opens its kind. */
  private openWaiters: { open: () => void; reject: (err: Error) => void }[] = [];
  private readonly keepAlive: NodeJS.Timeout | undefined;
  private nextId: number;
  private nextPing = 0;
  private remoteGoAway = false;
  /** closeWhenIdle was called: the last stream to go closes the session. */
  private closeOnIdle = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** We said Go Away: streams the peer opens from now on are reset (as Go's incomingStream does). */
  private localGoAway = false;
  private shutdown = false;
  /** Frames queued this turn (headers and payloads), written together by `flush`. */
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  /** Frames that may wait up to LAZY_FRAME_MS: written after `out` with the next write. */
  private lazy: Buffer[] = [];
  private lazyTimer: NodeJS.Timeout | undefined;
  private readonly flushLazy = (): void => {
    this.lazyTimer = undefined;
    this.flush();
  };
  private readonly flushSoon = (): void => {
    this.flushScheduled = false;
    this.flush();
  };
  /** Writers waiting for the transport to drain. */
  private drainWaiters: (() => void)[] = [];
  /** A Data frame whose FIN/RST applies once its payload has arrived. */
  private deferredFlags = 0;

  constructor(
    private readonly conn: Duplex,
    private readonly opts: YamuxSessionOptions,
  ) {
    super();
    this.nextId = opts.client ? 1 : 2;
    const openTimeoutMs = opts.streamOpenTimeoutMs ?? STREAM_OPEN_TIMEOUT_MS;
    if (openTimeoutMs > 0) this.ackDeadlines = new Deadlines(openTimeoutMs, (id) => this.openTimedOut(id));
    const closeTimeoutMs = opts.streamCloseTimeoutMs ?? STREAM_CLOSE_TIMEOUT_MS;
    if (closeTimeoutMs > 0) this.finDeadlines = new Deadlines(closeTimeoutMs, (id) => this.streams.get(id)?.closeTimedOut());
    conn.on("data", (chunk: Buffer) => this.onData(chunk));
    conn.on("error", (err) => this.terminate(err));
    conn.on("end", () => this.terminate(new Error("yamux: connection ended")));
    conn.on("close", () => this.terminate(new Error("yamux: connection closed")));
    const interval = opts.keepAliveIntervalMs ?? KEEPALIVE_INTERVAL_MS;
    if (interval > 0) {
      this.keepAlive = setInterval(() => this.ping().catch(() => undefined), interval);
      this.keepAlive.unref();
    }
  }

  /** True once the session has ended. */
  get closed(): boolean {
    return this.shutdown;
  }

  /** True while new streams can be opened: not ended, and the peer has not said Go Away. */
  get acceptsStreams(): boolean {
    return !this.shutdown && !this.remoteGoAway;
  }

  /** Streams currently open. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Opens a stream; data may be written at once, before the peer's ACK (spec.md "Opening a stream"). */
  open(): YamuxStream {
    return this.register((id) => new YamuxStream(this, id, Flag.SYN));
  }

  /**
   * Opens a stream once fewer than MAX_UNACKED_OPENS of ours await the peer's
   * ACK, as Go's OpenStream waits, so a burst of calls never overflows the
   * peer's accept backlog. Rejects when the session ends first.
   */
  openStream(): Promise<YamuxStream> {
    return this.whenOpenable(() => this.open());
  }

  /** Opens a stream for one call (YamuxCall: no Duplex), waiting as openStream does. */
  openCall(): Promise<YamuxCall> {
    return this.whenOpenable(() => this.register((id) => new YamuxCall(this, id)));
  }

  /** Opens a stream of ours made by `make` with the next id, and sends its SYN. */
  private register<T extends SessionStream>(make: (id: number) => T): T {
    if (this.shutdown) throw new Error("yamux: session shutdown");
    if (this.remoteGoAway) throw new Error("yamux: remote end is not accepting connections");
    const stream = make(this.nextId);
    this.nextId += 2;
    this.streams.set(stream.id, stream);
    this.unacked.add(stream.id);
    this.ackDeadlines?.add(stream.id);
    stream.announce();
    return stream;
  }

  /** Runs `open` at once while the peer's backlog has room, else once an earlier stream settles. */
  private whenOpenable<T>(open: () => T): Promise<T> {
    if (this.unacked.size < MAX_UNACKED_OPENS && this.openWaiters.length === 0) {
      try {
        return Promise.resolve(open());
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return new Promise((resolve, reject) =>
      this.openWaiters.push({
        open: () => {
          try {
            resolve(open());
          } catch (err) {
            reject(err as Error);
          }
        },
        reject,
      }),
    );
  }

  /** Sends a ping and resolves with the round trip in milliseconds; no answer in time closes the session. */
  ping(): Promise<number> {
    if (this.shutdown) return Promise.reject(new Error("yamux: session shutdown"));
    const id = this.nextPing;
    this.nextPing = (this.nextPing + 1) >>> 0;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.close(new Error("yamux: keepalive timeout")),
        this.opts.keepAliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS,
      );
      timer.unref();
      this.pings.set(id, { resolve, reject, sent: Date.now(), timer });
      this.sendFrame({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: id });
    });
  }

  /**
   * Closes the session once its last stream has finished, or after
   * `maxWaitMs` whatever is still open (for a session the peer told to go away).
   */
  closeWhenIdle(maxWaitMs: number): void {
    if (this.shutdown) return;
    this.closeOnIdle = true;
    if (this.streams.size === 0) return this.close();
    this.idleTimer = setTimeout(() => this.close(), maxWaitMs);
    this.idleTimer.unref();
  }

  /** Tells the peer to open no more streams (Go Away, normal), keeping the session and its streams open. */
  goAway(): void {
    this.localGoAway = true;
    this.sendFrame({ type: FrameType.GoAway, flags: 0, streamId: 0, length: GoAwayCode.Normal });
  }

  /** Sends Go Away (normal, or protocol error when `err` is one), ends the transport and every stream. */
  close(err?: Error): void {
    if (this.shutdown) return;
    const code = err instanceof YamuxProtocolError ? GoAwayCode.ProtocolError : GoAwayCode.Normal;
    this.sendFrame({ type: FrameType.GoAway, flags: 0, streamId: 0, length: code });
    this.flush();
    this.conn.end();
    this.terminate(err, false);
  }

  sendFrame(header: Header, data?: Buffer | readonly Uint8Array[]): boolean {
    if (this.shutdown || this.conn.destroyed || this.conn.writableEnded) return true;
    // Frames queued in one turn of the event loop (the callbacks and promise
    // continuations of one I/O phase) leave as one transport write instead of
    // one per frame: on the coderd link one WebSocket message when it is at
    // most WS_MAX_MESSAGE bytes, else messages of that size and one for the rest.
    this.out.push(encodeHeader(header));
    this.outBytes += HEADER_BYTES;
    if (data instanceof Uint8Array) this.queue(data);
    else if (data) for (const part of data) this.queue(part);
    if (this.outBytes >= FLUSH_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSoon);
    }
    return !this.conn.writableNeedDrain;
  }

  private queue(data: Uint8Array): void {
    if (data.length === 0) return;
    this.out.push(data);
    this.outBytes += data.length;
  }

  sendLazyFrame(header: Header): void {
    if (this.shutdown || this.conn.destroyed || this.conn.writableEnded) return;
    this.lazy.push(encodeHeader(header));
    if (this.lazyTimer) return;
    this.lazyTimer = setTimeout(this.flushLazy, LAZY_FRAME_MS);
    this.lazyTimer.unref();
  }

  /** Writes the queued frames, the lazy ones last, as one buffer. */
  private flush(): void {
    if (this.lazy.length > 0) {
      for (const frame of this.lazy) this.queue(frame);
      this.lazy = [];
      clearTimeout(this.lazyTimer);
      this.lazyTimer = undefined;
    }
    const parts = this.out;
    const size = this.outBytes;
    if (size === 0) return;
    this.out = [];
    this.outBytes = 0;
    if (this.conn.destroyed || this.conn.writableEnded) return;
    this.conn.write(parts.length === 1 ? parts[0] : Buffer.concat(parts, size));
  }

  whenDrained(fn: () => void): void {
    if (this.shutdown || !this.conn.writableNeedDrain) return fn();
    this.drainWaiters.push(fn);
    if (this.drainWaiters.length === 1) this.conn.once("drain", () => this.releaseWriters());
  }

  awaitFin(id: number): void {
    this.finDeadlines?.add(id);
  }

  forget(id: number): void {
    this.streams.delete(id);
    this.finDeadlines?.delete(id);
    this.settleOpen(id);
    if (this.closeOnIdle && this.streams.size === 0) this.close();
  }

  private openTimedOut(id: number): void {
    this.close(new Error(`yamux: stream ${id} was not acknowledged in time`));
  }

  private onData(chunk: Buffer): void {
    if (this.shutdown) return;
    try {
      for (const ev of this.reader.push(chunk)) {
        // A frame earlier in this chunk may have ended the session.
        if (this.shutdown) return;
        if ("header" in ev) this.onHeader(ev.header);
        else this.onPayload(ev.streamId, ev.data, ev.last);
      }
    } catch (err) {
      this.close(err as Error);
    }
  }

  private onHeader(h: Header): void {
    switch (h.type) {
      case FrameType.Ping:
        if (h.flags & Flag.SYN) this.sendFrame({ type: FrameType.Ping, flags: Flag.ACK, streamId: 0, length: h.length });
        else this.onPong(h.length);
        return;
      case FrameType.GoAway:
        if (h.length !== GoAwayCode.Normal) {
          this.terminate(new Error(`yamux: remote go away with code ${h.length}`));
          return;
        }
        if (!this.remoteGoAway) {
          this.remoteGoAway = true;
          this.emit("goAway");
        }
        return;
      case FrameType.WindowUpdate: {
        if (h.flags & (Flag.ACK | Flag.RST)) this.settleOpen(h.streamId);
        const stream = this.streamFor(h);
        if (!stream) return;
        stream.grant(h.length);
        stream.applyFlags(h.flags);
        return;
      }
      case FrameType.Data: {
        if (h.flags & (Flag.ACK | Flag.RST)) this.settleOpen(h.streamId);
        const stream = this.streamFor(h);
        stream?.applyFlags(h.flags & Flag.ACK);
        this.deferredFlags = h.flags & (Flag.FIN | Flag.RST);
        if (h.length === 0) this.applyDeferred(h.streamId);
        return;
      }
    }
  }

  private onPayload(streamId: number, data: Buffer, last: boolean): void {
    const stream = this.streams.get(streamId);
    if (stream && !stream.receive(data)) throw new YamuxProtocolError(`stream ${streamId} overran its receive window`);
    if (last) this.applyDeferred(streamId);
  }

  private applyDeferred(streamId: number): void {
    const flags = this.deferredFlags;
    this.deferredFlags = 0;
    if (flags) this.streams.get(streamId)?.applyFlags(flags);
  }

  /** The stream a Data or Window Update frame is for, accepting it first when it carries SYN. */
  private streamFor(h: Header): SessionStream | undefined {
    if (!(h.flags & Flag.SYN)) return this.streams.get(h.streamId);
    if (this.streams.has(h.streamId)) throw new YamuxProtocolError(`duplicate stream ${h.streamId}`);
    const onStream = this.opts.onStream;
    if (!onStream || this.localGoAway || this.streams.size >= MAX_INBOUND_STREAMS) {
      this.sendFrame({ type: FrameType.WindowUpdate, flags: Flag.RST, streamId: h.streamId, length: 0 });
      return undefined;
    }
    const stream = new YamuxStream(this, h.streamId, Flag.ACK);
    this.streams.set(stream.id, stream);
    stream.announce();
    onStream(stream);
    return stream;
  }

  /** A stream of ours was acknowledged, reset or forgotten: let a waiting openStream go ahead. */
  private settleOpen(id: number): void {
    if (!this.unacked.delete(id)) return;
    this.ackDeadlines?.delete(id);
    while (this.openWaiters.length > 0 && this.unacked.size < MAX_UNACKED_OPENS) this.openWaiters.shift()!.open();
  }

  private releaseWriters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const fn of waiters) fn();
  }

  private onPong(id: number): void {
    const ping = this.pings.get(id);
    if (!ping) return;
    this.pings.delete(id);
    clearTimeout(ping.timer);
    ping.resolve(Date.now() - ping.sent);
  }

  private terminate(err: Error | undefined, destroyConn = true): void {
    if (this.shutdown) return;
    this.shutdown = true;
    clearInterval(this.keepAlive);
    clearTimeout(this.idleTimer);
    clearTimeout(this.lazyTimer);
    this.ackDeadlines?.clear();
    this.finDeadlines?.clear();
    const streamErr = err ?? new Error("yamux: session shutdown");
    for (const ping of this.pings.values()) {
      clearTimeout(ping.timer);
      ping.reject(streamErr);
    }
    this.pings.clear();
    for (const waiter of this.openWaiters.splice(0)) waiter.reject(streamErr);
    this.releaseWriters();
    for (const stream of [...this.streams.values()]) stream.abort(err);
    this.streams.clear();
    if (destroyConn && !this.conn.destroyed) this.conn.destroy();
    this.emit("close", err);
  }
}
