import type { Duplex } from "node:stream";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescMethodStreaming,
  type DescMethodUnary,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { wireBytes } from "../coderd/known-encoding.js";
import { rpcName } from "./server.js";
import { decodeError, encodePackets, frameHeader, Kind, PacketReader, ProtocolError, SPLIT_BYTES } from "./wire.js";

/** Hears what comes back on a CallStream: reply bytes, then the end (`err` when it broke). */
export interface CallSink {
  data(chunk: Buffer): void;
  end(err: Error | undefined): void;
}

/**
 * A byte stream for one call: the request written once, the reply heard
 * through a sink. A yamux stream of its own for a unary call (YamuxCall) is
 * one without the machinery of a Duplex; every dialed Duplex is used as one.
 */
export interface CallStream {
  /** Sets who hears the reply; set before the request is written. */
  listen(sink: CallSink): void;
  /** Writes `parts` in order, as if joined: the request leaves without being copied into one buffer first where the stream can. */
  write(parts: readonly Uint8Array[]): void;
  /** The call is over: the stream is let go, and the sink hears nothing more. */
  close(): void;
}

/** How a dRPC transport reaches its server. */
export interface DrpcTransportOptions {
  /** Opens a fresh byte stream to the server (a unix socket, a yamux stream). */
  dial: () => Promise<Duplex>;
  /** Opens a fresh CallStream for a unary call; without it unary calls dial too. */
  dialCall?: () => Promise<CallStream>;
}

/** The cause of every failure where the connection went away while a call waited for its reply. */
const CONNECTION_LOST = new Error("dRPC connection lost during the call");

/**
 * True when a call failed because its connection went away after the
 * request was sent (not an error reply, not a failed dial, not a deadline):
 * what a server that closes the link on a message it will not read causes.
 */
export function connectionLost(err: unknown): boolean {
  return err instanceof ConnectError && err.cause === CONNECTION_LOST;
}

/** A dRPC error code as a Connect code: codes 1–16 are shared with gRPC, the rest are Unknown. */
function toConnectCode(code: number): Code {
  return code >= 1 && code <= 16 ? (code as Code) : Code.Unknown;
}

/**
 * A call's response: its message and method, and the header and trailer
 * (dRPC carries none) made only when a caller reads them: `Headers` loads
 * Node's fetch implementation (about 12 MiB) on first use, which a daemon
 * that only makes calls never needs. A class, so that a response costs one
 * plain object (relaying boundary logs is a hot path of unary calls).
 */
class Response<M> {
  private headers: Headers | undefined;
  private trailers: Headers | undefined;

  constructor(
    readonly stream: boolean,
    readonly service: DescService,
    readonly method: DescMethod,
    readonly message: M,
  ) {}

  get header(): Headers {
    return (this.headers ??= new Headers());
  }

  get trailer(): Headers {
    return (this.trailers ??= new Headers());
  }
}

/** RPC names as bytes, made once per method rather than once per call. */
const rpcNameBytes = new Map<string, Buffer>();

/**
 * The Invoke, Message and CloseSend packets of a call on stream 1, in parts
 * whose join is their encoding: the request (when it fits one frame) is a
 * part of its own, not copied; the rest is framing and the method name.
 */
function invokeParts(name: string, request: Uint8Array): Uint8Array[] {
  let nameBytes = rpcNameBytes.get(name);
  if (!nameBytes) rpcNameBytes.set(name, (nameBytes = Buffer.from(name)));
  const invoke = { kind: Kind.Invoke, streamId: 1, messageId: 1, data: nameBytes };
  const closeSend = { kind: Kind.CloseSend, streamId: 1, messageId: 3, data: EMPTY };
  const message = { kind: Kind.Message, streamId: 1, messageId: 2, data: request };
  if (request.length === 0 || request.length > SPLIT_BYTES) return [encodePackets([invoke, message, closeSend])];
  return [Buffer.concat([encodePackets([invoke]), frameHeader(message)]), request, encodePackets([closeSend])];
}

const EMPTY = new Uint8Array(0);

/**
 * A Duplex (a unix socket, a yamux stream) as a CallStream: its bytes go to
 * the sink, and its first error, end or close is the sink's end.
 */
class DuplexCall implements CallStream {
  private sink: CallSink | undefined;

  constructor(private readonly conn: Duplex) {}

  listen(sink: CallSink): void {
    this.sink = sink;
    const conn = this.conn;
    conn.on("data", (chunk: Buffer) => this.sink?.data(chunk));
    conn.on("error", (err) => this.ended(err));
    // A half-closed stream (a yamux FIN) may never emit 'close' while our side is open: its end is the end too.
    conn.on("end", () => this.ended(undefined));
    conn.on("close", () => this.ended(undefined));
  }

  write(parts: readonly Uint8Array[]): void {
    this.conn.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  close(): void {
    this.sink = undefined;
    this.conn.destroy();
  }

  private ended(err: Error | undefined): void {
    const sink = this.sink;
    this.sink = undefined;
    sink?.end(err);
  }
}

/** A dialed Duplex as a CallStream. */
function duplexCall(conn: Duplex): CallStream {
  return new DuplexCall(conn);
}

/** A failed dial as the call's error: a dialer that already says why (e.g. "agent not connected to coderd") is passed through. */
function dialError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  return new ConnectError(`dial: ${(err as Error).message}`, Code.Unavailable, undefined, undefined, err);
}

/** The deadline of `call` has passed. */
function timedOut(call: Call): void {
  call.fail("the operation timed out", Code.DeadlineExceeded);
}

/**
 * One dRPC call on a connection of its own, from its dial to its outcome,
 * for both call kinds: sends Invoke, Message and CloseSend on stream 1,
 * reads the reply packets of stream 1, and ends at the first outcome (the
 * server's CloseSend or Close, an Error packet, the connection going away,
 * a failed dial, the deadline, the abort signal), which alone reaches the
 * caller. The deadline and abort signal cover the dial too: a connection
 * that arrives after the call is over is closed unused.
 *
 * One object per call and no closures of its own beyond the two of its
 * dial's `then`: it is itself its connection's sink and its signal's abort
 * listener, and its timer gets it as an argument (relaying boundary logs
 * makes a unary call per batch).
 */
abstract class Call implements CallSink {
  /** Set once the outcome is known: what the connection says later is ignored, a connection dialed later is closed. */
  private over = false;
  private conn: CallStream | undefined;
  private readonly reader = new PacketReader();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ) {
    if (timeoutMs !== undefined && timeoutMs > 0) this.timer = setTimeout(timedOut, timeoutMs, this);
    signal?.addEventListener("abort", this);
  }

  /** A reply message. */
  protected abstract message(data: Uint8Array): void;

  /** The call's one outcome: `err`, or undefined for the server's end of the reply. */
  protected abstract settle(err: Error | undefined): void;

  /** Dials with `dial`, then sends the call `name` with `request` on the connection. */
  start(dial: () => Promise<CallStream>, name: string, request: Uint8Array): void {
    let dialing: Promise<CallStream>;
    try {
      dialing = dial();
    } catch (err) {
      return this.finish(dialError(err));
    }
    dialing.then(
      (conn) => this.connected(conn, name, request),
      (err: unknown) => this.finish(dialError(err)),
    );
  }

  /** Reply bytes from the connection: the packets of stream 1 tell what they mean. */
  data(chunk: Buffer): void {
    try {
      for (const p of this.reader.push(chunk)) {
        if (this.over) return;
        if (p.streamId !== 1) continue;
        if (p.kind === Kind.Message) this.message(p.data);
        else if (p.kind === Kind.CloseSend || p.kind === Kind.Close) this.finish(undefined);
        else if (p.kind === Kind.Error) {
          const e = decodeError(p.data);
          this.finish(new ConnectError(e.message, toConnectCode(e.code)));
        }
      }
    } catch (err) {
      this.fail((err as ProtocolError).message, Code.Internal);
    }
  }

  /** The connection went away before the reply was complete: `err` says how when it broke. */
  end(err: Error | undefined): void {
    this.fail(err?.message ?? "connection closed before the reply", Code.Unavailable, CONNECTION_LOST);
  }

  /** The abort signal fired. */
  handleEvent(): void {
    this.fail("the operation was aborted", Code.Canceled);
  }

  /** Ends the call with an error made here; once the call is over, nothing is made. */
  fail(message: string, code: Code, cause?: Error): void {
    if (!this.over) this.finish(new ConnectError(message, code, undefined, undefined, cause));
  }

  /**
   * Lets go of the timer, the abort listener and the connection, and marks
   * the call over (a connection still being dialed is closed when it comes).
   * For the caller that is done with a call whose outcome it no longer wants.
   */
  release(): void {
    this.over = true;
    clearTimeout(this.timer);
    this.signal?.removeEventListener("abort", this);
    const conn = this.conn;
    this.conn = undefined;
    conn?.close();
  }

  /** The first outcome ends the call; later ones are ignored. */
  private finish(err: Error | undefined): void {
    if (this.over) return;
    this.release();
    this.settle(err);
  }

  private connected(conn: CallStream, name: string, request: Uint8Array): void {
    if (this.over) return conn.close();
    this.conn = conn;
    conn.listen(this);
    // Listening may already end the call (the connection went before it was used).
    if (!this.over) conn.write(invokeParts(name, request));
  }
}

/**
 * A unary call: settles one promise with its first reply message (none
 * when the server's handler returned nothing) or its error.
 */
class UnaryCall extends Call {
  private reply: Uint8Array | undefined;

  constructor(
    private readonly resolve: (reply: Uint8Array | undefined) => void,
    private readonly reject: (err: Error) => void,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ) {
    super(signal, timeoutMs);
  }

  protected message(data: Uint8Array): void {
    this.reply ??= data;
  }

  protected settle(err: Error | undefined): void {
    if (err) this.reject(err);
    else this.resolve(this.reply);
  }
}

/** A server-streaming call: its reply messages and then its end (null) or error, queued in arrival order. */
class StreamCall extends Call {
  private readonly items: (Uint8Array | Error | null)[] = [];
  private wake: (() => void) | undefined;

  protected message(data: Uint8Array): void {
    this.put(data);
  }

  protected settle(err: Error | undefined): void {
    this.put(err ?? null);
  }

  /** The next item, waiting for it if none is queued. */
  async next(): Promise<Uint8Array | Error | null> {
    while (this.items.length === 0) await new Promise<void>((r) => (this.wake = r));
    return this.items.shift() as Uint8Array | Error | null;
  }

  private put(item: Uint8Array | Error | null): void {
    this.items.push(item);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * One unary dRPC call on a fresh connection, settled by its first reply
 * message and the server's CloseSend: a single promise and no queue.
 */
function unaryCall(
  dial: () => Promise<CallStream>,
  name: string,
  request: Uint8Array,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Promise<Uint8Array | undefined> {
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => new UnaryCall(resolve, reject, signal, timeoutMs).start(dial, name, request));
}

/**
 * One server-streaming dRPC call on a fresh connection: yields each reply
 * message until the server's CloseSend. Its end, its error or its return()
 * lets the connection go. (Connect's client never passes a caller's return()
 * on: a caller that stops reading early aborts its signal instead.)
 */
async function* streamCall(
  dial: () => Promise<CallStream>,
  name: string,
  request: Uint8Array,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted();
  const call = new StreamCall(signal, timeoutMs);
  call.start(dial, name, request);
  try {
    for (;;) {
      const item = await call.next();
      if (item === null) return;
      if (item instanceof Error) throw item;
      yield item;
    }
  } finally {
    call.release();
  }
}

/**
 * A Connect Transport over dRPC. Every call dials a fresh connection, as
 * Coder's agent opens a fresh yamux stream per RPC, so calls never wait on
 * each other.
 */
export function createDrpcTransport(opts: DrpcTransportOptions): Transport {
  const dialStream = (): Promise<CallStream> => opts.dial().then(duplexCall);
  const dialCall = opts.dialCall;
  const dialUnary = dialCall ? () => dialCall.call(opts) : dialStream;
  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      _header: unknown,
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      // A request decoded from bytes that are passed on (a relayed boundary batch) is not encoded again.
      const request = wireBytes(method.input, create(method.input, input));
      const reply = await unaryCall(dialUnary, rpcName(method), request, signal, timeoutMs);
      // A server whose handler returned nothing sends only CloseSend: that is an empty message.
      const message = fromBinary(method.output, reply ?? EMPTY);
      return new Response(false, method.parent, method, message) as unknown as UnaryResponse<I, O>;
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      _header: unknown,
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      if (method.methodKind !== "server_streaming") {
        throw new ConnectError("dRPC transport serves unary and server-streaming calls only", Code.Unimplemented);
      }
      let first: MessageInitShape<I> | undefined;
      for await (const m of input) {
        first = m;
        break;
      }
      const request = toBinary(method.input, create(method.input, first));
      async function* messages(): AsyncGenerator<MessageShape<O>> {
        for await (const data of streamCall(dialStream, rpcName(method), request, signal, timeoutMs)) {
          yield fromBinary(method.output, data);
        }
      }
      return new Response(true, method.parent, method, messages()) as unknown as StreamResponse<I, O>;
    },
  };
}
