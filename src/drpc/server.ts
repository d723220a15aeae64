import type { Duplex } from "node:stream";
import { fromBinary, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "../log.js";
import { DrpcHandlerContext, type CallSignal } from "./handler-context.js";
import { messageEncoder, type MessageEncoder } from "./message-encoder.js";
import { encodeError, encodePackets, Kind, PacketReader, ProtocolError, type Packet } from "./wire.js";

export { REQUEST_BYTES_KEY } from "./handler-context.js";

/** dRPC's code for an RPC the generated server does not implement (drpcerr.Unimplemented). */
export const UNIMPLEMENTED_CODE = 12;

type Handler = (request: unknown, context: HandlerContext) => unknown;

/**
 * Per method (by local name): how its request bytes become the request its
 * handler gets, in place of protobuf-es's fromBinary. A decoder throws on
 * bytes that are not a valid request, as fromBinary does.
 */
export type RequestDecoders<S extends DescService> = Partial<Record<keyof ServiceImpl<S>, (bytes: Uint8Array) => unknown>>;

interface Route {
  service: DescService;
  method: DescMethod;
  handler: Handler | undefined;
  /** Makes the handler's request of the request bytes. */
  decode: (bytes: Uint8Array) => unknown;
  /** Writes the handler's replies: directly where the message shape allows, else through protobuf-es. */
  encode: MessageEncoder<DescMethod["output"]>;
  unary: boolean;
}

const EMPTY = new Uint8Array(0);

/** The RPC path dRPC invokes: `/<package>.<Service>/<Method>`. */
export function rpcName(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The error a handler's failure becomes on the wire: its code (0 when unknown) and text. */
function wireError(err: unknown): { code: number; message: string } {
  if (err instanceof ConnectError) return { code: err.code === Code.Unknown ? 0 : err.code, message: err.rawMessage };
  return { code: 0, message: err instanceof Error ? err.message : String(err) };
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | undefined)?.then === "function";
}

/** One dRPC stream of a connection: its RPC, whether its call began, and its cancellation. */
class ServerStream implements CallSignal {
  name: string | undefined;
  route: Route | undefined;
  started = false;
  /** Set once the client cancelled or moved on; replies are then dropped. */
  aborted = false;
  private controller: AbortController | undefined;

  constructor(readonly id: number) {}

  /** The call's abort signal, made on first use: most handlers never read it. */
  signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  abort(): void {
    this.aborted = true;
    this.controller?.abort();
  }
}

/**
 * Serves Connect service implementations over dRPC, one connection at a
 * time per `serve` call, calls in sequence as a dRPC client makes them.
 * A call whose handler answers at once is answered within the same read,
 * its Message and CloseSend in one write.
 */
export class DrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly log: Logger | undefined;

  constructor(opts: { log?: Logger } = {}) {
    this.log = opts.log;
  }

  /** Mounts `impl`; methods it leaves out answer with code 12 "Unimplemented". */
  register<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>, decoders: RequestDecoders<S> = {}): void {
    const handlers = impl as Record<string, Handler | undefined>;
    for (const method of service.methods) {
      if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") continue;
      const handler = handlers[method.localName]?.bind(impl);
      const decode = (decoders as Record<string, ((bytes: Uint8Array) => unknown) | undefined>)[method.localName] ?? ((bytes: Uint8Array) => fromBinary(method.input, bytes));
      const encode = messageEncoder(method.output);
      this.routes.set(rpcName(method), { service, method, handler, decode, encode, unary: method.methodKind === "unary" });
    }
  }

  /**
   * Serves one connection until it ends. Calls run one after another in
   * stream order, so replies never interleave; a newer stream cancels an
   * older one that is still streaming, but a unary call whose request has
   * arrived is answered first. Bad input ends that connection, never throws.
   */
  serve(conn: Duplex): Promise<void> {
    return new Promise((resolve) => {
      const reader = new PacketReader();
      let stream: ServerStream | undefined;
      // The calls still running, in order; undefined when none is.
      let tail: Promise<void> | undefined;
      const start = (s: ServerStream, data: Uint8Array) => {
        s.started = true;
        const before = tail;
        const running = before ? before.then(() => this.call(conn, s, data)) : this.call(conn, s, data);
        if (!running) return;
        const done: Promise<void> = running.then(() => {
          if (tail === done) tail = undefined;
        });
        tail = done;
      };
      conn.on("data", (chunk: Buffer) => {
        let packets: Packet[];
        try {
          packets = reader.push(chunk);
        } catch (err) {
          this.log?.debug({ err: (err as ProtocolError).message }, "drpc connection closed on bad input");
          conn.destroy();
          return;
        }
        for (const p of packets) {
          if (stream && p.streamId < stream.id) continue;
          if (!stream || p.streamId > stream.id) {
            if (stream && (!stream.started || !stream.route?.unary)) stream.abort();
            stream = new ServerStream(p.streamId);
          }
          if (p.kind === Kind.Invoke) {
            stream.name = Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).toString("utf8");
            stream.route = this.routes.get(stream.name);
            // An unknown RPC fails at once, as dRPC's mux does, without waiting for the request.
            if (!stream.route) start(stream, EMPTY);
          } else if (p.kind === Kind.Message && !stream.started && stream.name !== undefined) {
            start(stream, p.data);
          } else if (p.kind === Kind.Cancel || (p.kind === Kind.Close && !stream.started)) stream.abort();
        }
      });
      conn.on("error", () => conn.destroy());
      conn.on("close", () => {
        stream?.abort();
        resolve();
      });
      conn.on("end", () => {
        // The client has sent everything (a yamux FIN after its call): answer what is
        // pending, then half-close our side too so the stream can finish.
        const finish = () => {
          if (!conn.writableEnded) conn.end();
        };
        if (tail) void tail.then(finish);
        else finish();
      });
    });
  }

  /**
   * Runs one call and writes its replies. Returns a promise only when the
   * handler did not answer at once (it is async, or streams); never rejects.
   */
  private call(conn: Duplex, stream: ServerStream, data: Uint8Array): Promise<void> | undefined {
    const name = stream.name ?? "";
    const route = stream.route;
    if (!route) {
      this.send(conn, stream, [this.errorPacket(stream, 1, 0, `protocol error: unknown rpc: ${JSON.stringify(name)}`)]);
      return undefined;
    }
    if (!route.handler) {
      this.send(conn, stream, [this.errorPacket(stream, 1, UNIMPLEMENTED_CODE, "Unimplemented")]);
      return undefined;
    }
    let result: unknown;
    try {
      const request = route.decode(data);
      result = route.handler(request, new DrpcHandlerContext(route.service, route.method, name, stream, data));
    } catch (err) {
      this.sendError(conn, stream, 1, err);
      return undefined;
    }
    if (!route.unary) return this.stream(conn, stream, route, result as AsyncIterable<unknown>);
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (out) => this.reply(conn, stream, route, out),
        (err: unknown) => this.sendError(conn, stream, 1, err),
      );
    }
    this.reply(conn, stream, route, result);
    return undefined;
  }

  /** A unary reply: the Message and the CloseSend in one write. */
  private reply(conn: Duplex, stream: ServerStream, route: Route, out: unknown): void {
    let message: Uint8Array;
    try {
      message = route.encode(out as Parameters<Route["encode"]>[0]);
    } catch (err) {
      this.sendError(conn, stream, 1, err);
      return;
    }
    this.send(conn, stream, [
      { kind: Kind.Message, streamId: stream.id, messageId: 1, data: message },
      { kind: Kind.CloseSend, streamId: stream.id, messageId: 2, data: EMPTY },
    ]);
  }

  /** A server-streaming call: one Message per item, then CloseSend, or an Error where it fails. */
  private async stream(conn: Duplex, stream: ServerStream, route: Route, items: AsyncIterable<unknown>): Promise<void> {
    let messageId = 1;
    try {
      for await (const out of items) {
        const data = route.encode(out as Parameters<Route["encode"]>[0]);
        this.send(conn, stream, [{ kind: Kind.Message, streamId: stream.id, messageId: messageId++, data }]);
      }
      this.send(conn, stream, [{ kind: Kind.CloseSend, streamId: stream.id, messageId, data: EMPTY }]);
    } catch (err) {
      this.sendError(conn, stream, messageId, err);
    }
  }

  private errorPacket(stream: ServerStream, messageId: number, code: number, message: string): Packet {
    return { kind: Kind.Error, streamId: stream.id, messageId, data: encodeError(code, message) };
  }

  private sendError(conn: Duplex, stream: ServerStream, messageId: number, err: unknown): void {
    const { code, message } = wireError(err);
    this.send(conn, stream, [this.errorPacket(stream, messageId, code, message)]);
  }

  /** Writes packets in one write, unless the connection is gone or the client moved on. */
  private send(conn: Duplex, stream: ServerStream, packets: Packet[]): void {
    if (!conn.writable || stream.aborted) return;
    conn.write(encodePackets(packets));
  }
}
