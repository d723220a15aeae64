import type { Duplex } from "node:stream";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { wireBytes } from "../coderd/known-encoding.js";
import { rpcName } from "./server.js";
import { decodeError, encodePacket, Kind, PacketReader, ProtocolError } from "./wire.js";

/** How a dRPC transport reaches its server. */
export interface DrpcTransportOptions {
  /** Opens a fresh byte stream to the server (a unix socket, a yamux stream). */
  dial: () => Promise<Duplex>;
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
 * The header and trailer of a reply (dRPC carries none), made only when a
 * caller reads them: `Headers` loads Node's fetch implementation (about
 * 12 MiB) on first use, which a daemon that only makes calls never needs.
 */
function noMetadata(): { readonly header: Headers; readonly trailer: Headers } {
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  return {
    get header() {
      return (header ??= new Headers());
    },
    get trailer() {
      return (trailer ??= new Headers());
    },
  };
}

/** What came back for one call, in arrival order: messages, the end (null), or an error. */
class Replies {
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

/** Sends Invoke, Message and CloseSend on stream 1 of `conn` and feeds what comes back into `replies`. */
function send(conn: Duplex, name: string, request: Uint8Array, replies: Replies): void {
  const reader = new PacketReader();
  conn.on("data", (chunk: Buffer) => {
    try {
      for (const p of reader.push(chunk)) {
        if (p.streamId !== 1) continue;
        if (p.kind === Kind.Message) replies.put(p.data);
        else if (p.kind === Kind.CloseSend || p.kind === Kind.Close) replies.put(null);
        else if (p.kind === Kind.Error) {
          const e = decodeError(p.data);
          replies.put(new ConnectError(e.message, toConnectCode(e.code)));
        }
      }
    } catch (err) {
      replies.fail((err as ProtocolError).message, Code.Internal);
    }
  });
  conn.on("error", (err) => replies.fail(err.message, Code.Unavailable, CONNECTION_LOST));
  // A half-closed stream (a yamux FIN) may never emit 'close' while our side is open: its end is the end too.
  conn.on("end", () => replies.fail("connection closed before the reply", Code.Unavailable, CONNECTION_LOST));
  conn.on("close", () => replies.fail("connection closed before the reply", Code.Unavailable, CONNECTION_LOST));
  conn.write(
    Buffer.concat([
      encodePacket({ kind: Kind.Invoke, streamId: 1, messageId: 1, data: Buffer.from(name) }),
      encodePacket({ kind: Kind.Message, streamId: 1, messageId: 2, data: request }),
      encodePacket({ kind: Kind.CloseSend, streamId: 1, messageId: 3, data: new Uint8Array(0) }),
    ]),
  );
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
    // A dialer that already says why (e.g. "agent not connected to coderd") is passed through as is.
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(`dial: ${(err as Error).message}`, Code.Unavailable, undefined, undefined, err);
  } finally {
    replies.onFail = undefined;
  }
}

/**
 * One dRPC call on a fresh connection: sends Invoke, Message and CloseSend
 * on stream 1, then yields each reply message until the server's CloseSend.
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
      let reply: Uint8Array | undefined;
      for await (const data of call(opts, rpcName(method), request, signal, timeoutMs)) reply ??= data;
      return Object.defineProperties(noMetadata(), {
        stream: { value: false, enumerable: true },
        service: { value: method.parent, enumerable: true },
        method: { value: method, enumerable: true },
        // A server whose handler returned nothing sends only CloseSend: that is an empty message.
        message: { value: fromBinary(method.output, reply ?? new Uint8Array(0)), enumerable: true },
      }) as UnaryResponse<I, O>;
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
      return Object.defineProperties(noMetadata(), {
        stream: { value: true, enumerable: true },
        service: { value: method.parent, enumerable: true },
        method: { value: method, enumerable: true },
        message: { value: messages(), enumerable: true },
      }) as StreamResponse<I, O>;
    },
  };
}
