import type { Duplex } from "node:stream";
import { create, fromBinary, toBinary, type DescMethod, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  createHandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { Logger } from "../log.js";
import { encodeError, encodePacket, Kind, PacketReader, ProtocolError, type Packet } from "./wire.js";

/** dRPC's code for an RPC the generated server does not implement (drpcerr.Unimplemented). */
export const UNIMPLEMENTED_CODE = 12;

/**
 * The request exactly as it arrived on the wire, in every handler's
 * `context.values`, for a handler that must see or relay the raw bytes.
 */
export const REQUEST_BYTES_KEY = createContextKey<Uint8Array>(new Uint8Array(0), { description: "dRPC request bytes" });

type Handler = (request: unknown, context: ReturnType<typeof createHandlerContext>) => unknown;

interface ServerStream {
  id: number;
  name?: string;
  started: boolean;
  abort: AbortController;
}

interface Route {
  service: DescService;
  method: DescMethod;
  handler: Handler | undefined;
}

/** The RPC path dRPC invokes: `/<package>.<Service>/<Method>`. */
export function rpcName(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The error a handler's failure becomes on the wire: its code (0 when unknown) and text. */
function wireError(err: unknown): { code: number; message: string } {
  if (err instanceof ConnectError) return { code: err.code === Code.Unknown ? 0 : err.code, message: err.rawMessage };
  return { code: 0, message: err instanceof Error ? err.message : String(err) };
}

/**
 * Serves Connect service implementations over dRPC, one connection at a
 * time per `serve` call, calls in sequence as a dRPC client makes them.
 */
export class DrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly log: Logger | undefined;

  constructor(opts: { log?: Logger } = {}) {
    this.log = opts.log;
  }

  /** Mounts `impl`; methods it leaves out answer with code 12 "Unimplemented". */
  register<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>): void {
    const handlers = impl as Record<string, Handler | undefined>;
    for (const method of service.methods) {
      if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") continue;
      this.routes.set(rpcName(method), { service, method, handler: handlers[method.localName] });
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
      let previous: Promise<void> = Promise.resolve();
      const start = (s: ServerStream, data: Uint8Array) => {
        s.started = true;
        const before = previous;
        previous = before.then(() => this.call(conn, s, data));
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
            if (stream && (!stream.started || this.routes.get(stream.name ?? "")?.method.methodKind !== "unary")) {
              stream.abort.abort();
            }
            stream = { id: p.streamId, started: false, abort: new AbortController() };
          }
          if (p.kind === Kind.Invoke) {
            stream.name = Buffer.from(p.data).toString();
            // An unknown RPC fails at once, as dRPC's mux does, without waiting for the request.
            if (!this.routes.has(stream.name)) start(stream, new Uint8Array(0));
          } else if (p.kind === Kind.Message && !stream.started && stream.name !== undefined) {
            start(stream, p.data);
          } else if (p.kind === Kind.Cancel || (p.kind === Kind.Close && !stream.started)) stream.abort.abort();
        }
      });
      conn.on("error", () => conn.destroy());
      conn.on("close", () => {
        stream?.abort.abort();
        resolve();
      });
      conn.on("end", () => {
        // The client has sent everything (a yamux FIN after its call): answer what is
        // pending, then half-close our side too so the stream can finish.
        void previous.then(() => {
          if (!conn.writableEnded) conn.end();
        });
      });
    });
  }

  private async call(conn: Duplex, stream: ServerStream, data: Uint8Array): Promise<void> {
    const { id: streamId, abort } = stream;
    const name = stream.name ?? "";
    const signal = abort.signal;
    let messageId = 1;
    const send = (kind: Kind, payload: Uint8Array = new Uint8Array(0)) => {
      if (!conn.writable || signal.aborted) return;
      conn.write(encodePacket({ kind, streamId, messageId: messageId++, data: payload }));
    };
    const route = this.routes.get(name);
    if (!route) {
      send(Kind.Error, encodeError(0, `protocol error: unknown rpc: ${JSON.stringify(name)}`));
      return;
    }
    if (!route.handler) {
      send(Kind.Error, encodeError(UNIMPLEMENTED_CODE, "Unimplemented"));
      return;
    }
    const { service, method, handler } = route;
    try {
      const request = fromBinary(method.input, data);
      const context = createHandlerContext({
        service,
        method,
        protocolName: "drpc",
        requestMethod: "POST",
        url: name,
        requestSignal: signal,
        contextValues: createContextValues().set(REQUEST_BYTES_KEY, data),
      });
      const result = handler(request, context);
      if (method.methodKind === "server_streaming") {
        for await (const out of result as AsyncIterable<Record<string, unknown>>) {
          send(Kind.Message, toBinary(method.output, create(method.output, out)));
        }
      } else {
        send(Kind.Message, toBinary(method.output, create(method.output, (await result) as Record<string, unknown> | undefined)));
      }
      send(Kind.CloseSend);
    } catch (err) {
      const { code, message } = wireError(err);
      send(Kind.Error, encodeError(code, message));
    }
  }
}
