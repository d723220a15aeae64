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
import { decodeError, encodePackets, Kind, PacketReader, ProtocolError } from "./wire.js";

/** Hears what comes back on a CallStream: reply bytes, then the end (`err` when it broke). */
export interface CallSink {
  data(chunk: Buffer): void;
  end(err: Error | undefined): void;
}

/**
 * A byte stream for one unary call, lighter than a Duplex (a yamux stream
 * of its own): the request written once, the reply heard through a sink.
 */
export interface CallStream {
  /** Sets who hears the reply; set before the request is written. */
  listen(sink: CallSink): void;
  write(data: Buffer): void;
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
 * plain object (the hot path of relaying boundary logs makes about a
 * thousand a second).
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

/** What came back for one call, in arrival order: messages, the end (null), or an error. */
class Replies implements ReplySink {
  private readonly items: (Uint8Array | Error | null)[] = [];
  private wake: (() => void) | undefined;
  /** Set while dialing, so that a deadline or abort also ends the wait for the connection. */
  onFail: ((err: ConnectError) => void) | undefined;
  /** Set once the call is over: the close of its connection is then no failure (and builds no error). */
  finished = false;

  put(item: Uint8Array | Error | null): void {
    if (this.finished) return;
    this.items.push(item);
    this.wake?.();
  }

  message(data: Uint8Array): void {
    this.put(data);
  }

  end(): void {
    this.put(null);
  }

  error(err: ConnectError): void {
    this.put(err);
  }

  fail(message: string, code: Code, cause?: Error): void {
    if (this.finished) return;
    const err = new ConnectError(message, code, undefined, undefined, cause);
    this.onFail?.(err);
    this.put(err);
  }

  async next(): Promise<Uint8Array | Error | null> {
    while (this.items.length === 0) await new Promise<void>((r) => (this.wake = r));
    return this.items.shift() as Uint8Array | Error | null;
  }
}

/** What one call hears from its connection: reply messages, the end, an error, or the connection going away. */
interface ReplySink {
  message(data: Uint8Array): void;
  end(): void;
  error(err: ConnectError): void;
  fail(message: string, code: Code, cause?: Error): void;
}

/** RPC names as bytes, made once per method rather than once per call. */
const rpcNameBytes = new Map<string, Buffer>();

/** The Invoke, Message and CloseSend packets of a call on stream 1, as one buffer: one write, one transport frame. */
function invokePackets(name: string, request: Uint8Array): Buffer {
  let nameBytes = rpcNameBytes.get(name);
  if (!nameBytes) rpcNameBytes.set(name, (nameBytes = Buffer.from(name)));
  return encodePackets([
    { kind: Kind.Invoke, streamId: 1, messageId: 1, data: nameBytes },
    { kind: Kind.Message, streamId: 1, messageId: 2, data: request },
    { kind: Kind.CloseSend, streamId: 1, messageId: 3, data: EMPTY },
  ]);
}

const EMPTY = new Uint8Array(0);

/** Reads the packets of stream 1 from the reply bytes it is given and tells `sink` what they say. */
function replyReader(sink: ReplySink): (chunk: Buffer) => void {
  const reader = new PacketReader();
  return (chunk) => {
    try {
      for (const p of reader.push(chunk)) {
        if (p.streamId !== 1) continue;
        if (p.kind === Kind.Message) sink.message(p.data);
        else if (p.kind === Kind.CloseSend || p.kind === Kind.Close) sink.end();
        else if (p.kind === Kind.Error) {
          const e = decodeError(p.data);
          sink.error(new ConnectError(e.message, toConnectCode(e.code)));
        }
      }
    } catch (err) {
      sink.fail((err as ProtocolError).message, Code.Internal);
    }
  };
}

/** The connection went away before the reply was complete: `err` says how when it broke. */
function lost(sink: ReplySink, err?: Error): void {
  sink.fail(err?.message ?? "connection closed before the reply", Code.Unavailable, CONNECTION_LOST);
}

/** Sends Invoke, Message and CloseSend on stream 1 of `conn` and tells `sink` what comes back. */
function send(conn: Duplex, name: string, request: Uint8Array, sink: ReplySink): void {
  conn.on("data", replyReader(sink));
  conn.on("error", (err) => lost(sink, err));
  // A half-closed stream (a yamux FIN) may never emit 'close' while our side is open: its end is the end too.
  conn.on("end", () => lost(sink));
  conn.on("close", () => lost(sink));
  conn.write(invokePackets(name, request));
}

/** As `send`, on a CallStream. */
function sendOnCall(call: CallStream, name: string, request: Uint8Array, sink: ReplySink): void {
  call.listen({ data: replyReader(sink), end: (err) => lost(sink, err) });
  call.write(invokePackets(name, request));
}

/** A dialed connection of either kind, as a unary call uses it. */
interface Dialed {
  close(): void;
  send(name: string, request: Uint8Array, sink: ReplySink): void;
}

/** Dials the lightest connection the options offer for one unary call. */
function dialUnary(opts: DrpcTransportOptions): Promise<Dialed> {
  if (opts.dialCall) {
    return opts.dialCall().then((call) => ({
      close: () => call.close(),
      send: (name, request, sink) => sendOnCall(call, name, request, sink),
    }));
  }
  return opts.dial().then((conn) => ({
    close: () => conn.destroy(),
    send: (name, request, sink) => send(conn, name, request, sink),
  }));
}

/** A failed dial as the call's error: a dialer that already says why (e.g. "agent not connected to coderd") is passed through. */
function dialError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  return new ConnectError(`dial: ${(err as Error).message}`, Code.Unavailable, undefined, undefined, err);
}

/**
 * One unary dRPC call on a fresh connection, settled by its first reply
 * message and the server's CloseSend. A single promise and no queue: the
 * hot path of relaying boundary logs makes about a thousand of these a
 * second. The deadline and abort signal cover the dial too.
 */
function unaryCall(
  opts: DrpcTransportOptions,
  name: string,
  request: Uint8Array,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Promise<Uint8Array | undefined> {
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    let done = false;
    let conn: Dialed | undefined;
    let reply: Uint8Array | undefined;
    const finish = (err: Error | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      conn?.close();
      if (err) reject(err);
      else resolve(reply);
    };
    const sink: ReplySink = {
      message: (data) => (reply ??= data),
      end: () => finish(undefined),
      error: (err) => finish(err),
      fail: (message, code, cause) => {
        if (!done) finish(new ConnectError(message, code, undefined, undefined, cause));
      },
    };
    const onAbort = () => sink.fail("the operation was aborted", Code.Canceled);
    const timer =
      timeoutMs !== undefined && timeoutMs > 0
        ? setTimeout(() => sink.fail("the operation timed out", Code.DeadlineExceeded), timeoutMs)
        : undefined;
    signal?.addEventListener("abort", onAbort);
    let dialing: Promise<Dialed>;
    try {
      dialing = dialUnary(opts);
    } catch (err) {
      return finish(dialError(err));
    }
    dialing.then(
      (dialed) => {
        // A connection that arrives after the deadline or abort is closed unused.
        if (done) return void dialed.close();
        conn = dialed;
        dialed.send(name, request, sink);
      },
      (err: unknown) => finish(dialError(err)),
    );
  });
}

/** Dials, giving up when `replies` fails first (deadline, abort); a connection that arrives too late is closed. */
async function dial(opts: DrpcTransportOptions, replies: Replies): Promise<Duplex> {
  const dialing = opts.dial();
  try {
    return await Promise.race([dialing, new Promise<never>((_, reject) => (replies.onFail = reject))]);
  } catch (err) {
    void dialing.then(
      (late) => late.destroy(),
      () => undefined,
    );
    throw dialError(err);
  } finally {
    replies.onFail = undefined;
  }
}

/**
 * One server-streaming dRPC call on a fresh connection: sends Invoke,
 * Message and CloseSend on stream 1, then yields each reply message until
 * the server's CloseSend.
 * The deadline and abort signal cover the dial too.
 */
async function* call(
  opts: DrpcTransportOptions,
  name: string,
  request: Uint8Array,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted();
  const replies = new Replies();
  const timer =
    timeoutMs !== undefined && timeoutMs > 0
      ? setTimeout(() => replies.fail("the operation timed out", Code.DeadlineExceeded), timeoutMs)
      : undefined;
  const onAbort = () => replies.fail("the operation was aborted", Code.Canceled);
  signal?.addEventListener("abort", onAbort);
  let conn: Duplex | undefined;
  try {
    conn = await dial(opts, replies);
    send(conn, name, request, replies);
    for (;;) {
      const item = await replies.next();
      if (item === null) return;
      if (item instanceof Error) throw item;
      yield item;
    }
  } finally {
    replies.finished = true;
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    conn?.destroy();
  }
}

/**
 * A Connect Transport over dRPC. Every call dials a fresh connection, as
 * Coder's agent opens a fresh yamux stream per RPC, so calls never wait on
 * each other.
 */
export function createDrpcTransport(opts: DrpcTransportOptions): Transport {
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
      const reply = await unaryCall(opts, rpcName(method), request, signal, timeoutMs);
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
        for await (const data of call(opts, rpcName(method), request, signal, timeoutMs)) {
          yield fromBinary(method.output, data);
        }
      }
      return new Response(true, method.parent, method, messages()) as unknown as StreamResponse<I, O>;
    },
  };
}
