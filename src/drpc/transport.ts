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
import { rpcName } from "./server.js";
import { decodeError, encodePacket, Kind, PacketReader, ProtocolError } from "./wire.js";

/** How a dRPC transport reaches its server. */
export interface DrpcTransportOptions {
  /** Opens a fresh byte stream to the server (a unix socket, a yamux stream). */
  dial: () => Promise<Duplex>;
}

/** A dRPC error code as a Connect code: codes 1–16 are shared with gRPC, the rest are Unknown. */
function toConnectCode(code: number): Code {
  return code >= 1 && code <= 16 ? (code as Code) : Code.Unknown;
}

/**
 * One dRPC call on a fresh connection: sends Invoke, Message and CloseSend
 * on stream 1, then yields each reply message until the server's CloseSend.
 */
async function* call(
  opts: DrpcTransportOptions,
  name: string,
  request: Uint8Array,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted();
  let conn: Duplex;
  try {
    conn = await opts.dial();
  } catch (err) {
    // A dialer that already says why (e.g. "agent not connected to coderd") is passed through as is.
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(`dial: ${(err as Error).message}`, Code.Unavailable, undefined, undefined, err);
  }
  const reader = new PacketReader();
  const queue: (Uint8Array | Error | null)[] = [];
  let wake: (() => void) | undefined;
  const put = (item: Uint8Array | Error | null) => {
    queue.push(item);
    wake?.();
  };
  const fail = (message: string, code: Code) => put(new ConnectError(message, code));
  const timer =
    timeoutMs !== undefined && timeoutMs > 0
      ? setTimeout(() => fail("the operation timed out", Code.DeadlineExceeded), timeoutMs)
      : undefined;
  const onAbort = () => fail("the operation was aborted", Code.Canceled);
  signal?.addEventListener("abort", onAbort);
  conn.on("data", (chunk: Buffer) => {
    try {
      for (const p of reader.push(chunk)) {
        if (p.streamId !== 1) continue;
        if (p.kind === Kind.Message) put(p.data);
        else if (p.kind === Kind.CloseSend || p.kind === Kind.Close) put(null);
        else if (p.kind === Kind.Error) {
          const e = decodeError(p.data);
          put(new ConnectError(e.message, toConnectCode(e.code)));
        }
      }
    } catch (err) {
      fail((err as ProtocolError).message, Code.Internal);
    }
  });
  conn.on("error", (err) => fail(err.message, Code.Unavailable));
  // A half-closed stream (a yamux FIN) may never emit 'close' while our side is open: its end is the end too.
  conn.on("end", () => fail("connection closed before the reply", Code.Unavailable));
  conn.on("close", () => fail("connection closed before the reply", Code.Unavailable));
  conn.write(
    Buffer.concat([
      encodePacket({ kind: Kind.Invoke, streamId: 1, messageId: 1, data: Buffer.from(name) }),
      encodePacket({ kind: Kind.Message, streamId: 1, messageId: 2, data: request }),
      encodePacket({ kind: Kind.CloseSend, streamId: 1, messageId: 3, data: new Uint8Array(0) }),
    ]),
  );
  try {
    for (;;) {
      if (queue.length === 0) await new Promise<void>((r) => (wake = r));
      const item = queue.shift();
      if (item === undefined) continue;
      if (item === null) return;
      if (item instanceof Error) throw item;
      yield item;
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    conn.destroy();
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
      const request = toBinary(method.input, create(method.input, input));
      let reply: Uint8Array | undefined;
      for await (const data of call(opts, rpcName(method), request, signal, timeoutMs)) reply ??= data;
      return {
        stream: false,
        service: method.parent,
        method,
        header: new Headers(),
        // A server whose handler returned nothing sends only CloseSend: that is an empty message.
        message: fromBinary(method.output, reply ?? new Uint8Array(0)),
        trailer: new Headers(),
      };
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
      return {
        stream: true,
        service: method.parent,
        method,
        header: new Headers(),
        message: messages(),
        trailer: new Headers(),
      };
    },
  };
}
