import { EventEmitter, once } from "node:events";
import fs from "node:fs";
import http, { type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import { toJson, type DescMessage, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { WebSocketServer, type WebSocket } from "ws";
import { Agent as AgentService } from "../../gen/coder/agent/v2/agent_pb.js";
import { DrpcServer, REQUEST_BYTES_KEY, type RequestDecoders } from "../drpc/server.js";
import { goJson } from "../http/json.js";
import type { Logger } from "../log.js";
import { embeddedAgentService } from "./embedded.js";
import { EmbeddedStore } from "./embedded-store.js";
import { AGENT_RPC_PATH, CURRENT_MAJOR, CURRENT_MINOR, SESSION_TOKEN_HEADER } from "./rpc-endpoint.js";
import { websocketStream, WS_MAX_PAYLOAD } from "./websocket-stream.js";
import { KEEPALIVE_INTERVAL_MS, YamuxSession } from "./yamux/session.js";

type Handler = (request: unknown, context: HandlerContext) => unknown;

/** One WebSocket connection the peer accepted. */
export interface PeerConnection {
  /** The `role` query parameter, if any. */
  role: string | undefined;
  /** The Agent API version asked for (2.0 when the query had none, as coderd assumes). */
  version: string;
  /** The client's address. */
  remoteAddress: string | undefined;
  /** The yamux session over the connection's WebSocket. */
  session: YamuxSession;
}

/** One RPC the peer received. */
export interface PeerCall {
  /** The proto method name, e.g. `UpdateAppStatus`. */
  method: string;
  /** The decoded request. */
  request: Message;
  /** The request's protobuf bytes exactly as they arrived. */
  bytes: Uint8Array;
  /** The `role` of the connection it came on. */
  role: string | undefined;
}

/** One request to the RPC endpoint and how it was answered (101 for an accepted upgrade). */
export interface PeerRequest {
  /** The HTTP status answered (101 = upgraded). */
  status: number;
  /** The `role` query parameter, if any. */
  role: string | undefined;
  /** The `version` query parameter, null when absent. */
  version: string | null;
  /** The Coder-Session-Token header, if any. */
  token: string | undefined;
}

/** Where a CoderdPeer listens, what it accepts and where it keeps what it receives. */
export interface CoderdPeerOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** The agent token it accepts (default "coderd-peer-token"). */
  token?: string;
  /** Where received requests are kept; default a store in `dataDir` (default a temporary directory). */
  store?: EmbeddedStore;
  /** Directory for the store it makes when `store` is not given. */
  dataDir?: string;
  /** Where connections, requests and every call are logged; silent when absent. */
  log?: Logger;
  /** yamux keepalive interval of the peer's sessions (default 30 s, as coderd's yamux.Server(nil); 0 = off). */
  keepAliveIntervalMs?: number;
  /** Serve this Agent implementation instead of the embedded one (e.g. an in-memory one for benchmarks). */
  service?: Partial<ServiceImpl<typeof AgentService>>;
  /** How `service` takes some requests instead of decoding them whole (e.g. as wire bytes, for benchmarks). */
  decoders?: RequestDecoders<typeof AgentService>;
  /** Keep and log every call in `calls` (default true); off for benchmarks, where they would pile up. */
  recordCalls?: boolean;
  /**
   * Largest WebSocket message read; a bigger one closes the connection with
   * 1009 (message too big), as a coderd whose websocket library kept its
   * 32 KiB default read limit does (default WS_MAX_PAYLOAD).
   */
  readLimit?: number;
}

interface Events {
  call: [PeerCall];
  connection: [PeerConnection];
  disconnect: [PeerConnection];
  request: [PeerRequest];
}

interface Fault {
  remaining: number;
  error: ConnectError;
}

/** A failed check before the upgrade: HTTP status and coderd's codersdk.Response body. */
interface Rejection {
  status: number;
  body: Record<string, unknown>;
}

/**
 * A stand-in for coderd that speaks its real wire protocol: the agent RPC
 * endpoint with coderd's token and version checks, then a WebSocket carrying
 * yamux, each yamux stream a dRPC connection served by the embedded Agent
 * service into an EmbeddedStore. Test hooks fail calls on demand, drop every
 * connection, and listen again on the same port.
 */
export class CoderdPeer extends EventEmitter<Events> {
  readonly token: string;
  readonly store: EmbeddedStore;
  /** Open connections. */
  readonly connections = new Set<PeerConnection>();
  /** Every call received, oldest first. */
  readonly calls: PeerCall[] = [];
  /** Every request to the RPC endpoint, oldest first. */
  readonly requests: PeerRequest[] = [];
  private readonly faults = new Map<string, Fault>();
  private readonly wss: WebSocketServer;
  private readonly ownedDir: string | undefined;
  private readonly ownsStore: boolean;
  private readonly sockets = new Map<PeerConnection, Socket>();
  private frozen = false;
  private server: http.Server | undefined;
  private port: number;

  constructor(private readonly opts: CoderdPeerOptions = {}) {
    super();
    this.token = opts.token ?? "coderd-peer-token";
    this.port = opts.port ?? 0;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.readLimit ?? WS_MAX_PAYLOAD,
      perMessageDeflate: false,
    });
    if (opts.store) {
      this.store = opts.store;
      this.ownsStore = false;
    } else {
      const dir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "coderd-peer-"));
      if (!opts.dataDir) this.ownedDir = dir;
      fs.mkdirSync(dir, { recursive: true });
      this.store = EmbeddedStore.inDataDir(dir);
      this.ownsStore = true;
    }
  }

  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  get url(): string {
    const host = this.opts.host ?? "127.0.0.1";
    return `http://${host.includes(":") ? `[${host}]` : host}:${this.port}`;
  }

  /** True while listening. */
  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Listens (again): on `port`, else the port it had before, else a free one. */
  async start(opts: { port?: number } = {}): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => {
      const rejection = this.check(req);
      const reply = rejection ?? { status: 426, body: { message: "Upgrade Required." } };
      const body = goJson(reply.body);
      res.writeHead(reply.status, { "Content-Type": "application/json; charset=utf-8" });
      res.end(body);
    });
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    server.listen(opts.port ?? this.port, this.opts.host ?? "127.0.0.1");
    await once(server, "listening");
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    this.opts.log?.info({ url: this.url }, "coderd peer listening");
  }

  /** Goes away: stops listening and drops every connection at once. The store stays readable. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const ws of this.wss.clients) ws.terminate();
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    this.opts.log?.info({ url: this.url }, "coderd peer closed");
  }

  /** Closes, then releases the store (and the temporary directory) it made. */
  async dispose(): Promise<void> {
    await this.close();
    if (this.ownsStore) this.store.close();
    if (this.ownedDir) fs.rmSync(this.ownedDir, { recursive: true, force: true });
  }

  /** The next `n` calls of `method` (`UpdateAppStatus` or `updateAppStatus`) fail with `error`. */
  failNext(method: string, n = 1, error = new ConnectError("coderd peer: injected failure", Code.Internal)): void {
    this.faults.set(methodName(method), { remaining: n, error });
  }

  /** Every call of `method` fails with `error` until `clearFaults`. */
  failAlways(method: string, error = new ConnectError("coderd peer: injected failure", Code.Internal)): void {
    this.faults.set(methodName(method), { remaining: Infinity, error });
  }

  /** Forgets every fault set by `failNext` and `failAlways`. */
  clearFaults(): void {
    this.faults.clear();
  }

  /**
   * Hangs like a wedged coderd: stops reading every connection (no replies,
   * no pongs, nothing closed) until `thaw`, so an agent's keepalive must notice.
   */
  freeze(): void {
    this.frozen = true;
    for (const socket of this.sockets.values()) socket.pause();
  }

  /** Reads again after `freeze`. */
  thaw(): void {
    this.frozen = false;
    for (const socket of this.sockets.values()) socket.resume();
  }

  /**
   * Says yamux Go Away (normal) on every connection and keeps them open, as
   * a server about to shut down does: no new streams will be accepted.
   */
  goAway(): void {
    for (const conn of this.connections) conn.session.goAway();
  }

  /** Calls of `method` received so far. */
  callsOf(method: string): PeerCall[] {
    const name = methodName(method);
    return this.calls.filter((c) => c.method === name);
  }

  /** The embedded Agent service for one connection, with every call recorded, logged and subject to faults. */
  private service(role: string | undefined): Partial<ServiceImpl<typeof AgentService>> {
    const base = (this.opts.service ?? embeddedAgentService(this.store)) as unknown as Record<string, Handler | undefined>;
    const impl: Record<string, Handler> = {};
    for (const method of AgentService.methods) {
      const handler = base[method.localName];
      if (!handler) continue;
      const record = this.opts.recordCalls ?? true;
      impl[method.localName] = (request, context) => {
        if (record) this.record({ method: method.name, request: request as Message, bytes: context.values.get(REQUEST_BYTES_KEY), role }, method.input);
        const fault = this.faults.get(method.name);
        if (fault && fault.remaining > 0) {
          fault.remaining--;
          throw fault.error;
        }
        return handler(request, context);
      };
    }
    return impl as Partial<ServiceImpl<typeof AgentService>>;
  }

  private record(call: PeerCall, input: DescMessage): void {
    this.calls.push(call);
    this.opts.log?.info(
      { method: call.method, role: call.role, request: toJson(input, call.request as never) },
      "rpc received",
    );
    this.emit("call", call);
  }

  /** coderd's checks before the upgrade: the token (httpmw), then the API version. */
  private check(req: IncomingMessage): Rejection | undefined {
    const url = new URL(req.url ?? "/", "http://coderd");
    if (url.pathname !== AGENT_RPC_PATH) return { status: 404, body: { message: "Route not found." } };
    const token = req.headers[SESSION_TOKEN_HEADER.toLowerCase()];
    if (typeof token !== "string" || token === "") {
      return { status: 401, body: { message: `Cookie "coder_session_token" must be provided.` } };
    }
    if (token !== this.token) {
      return {
        status: 401,
        body: {
          message: "Workspace agent not authorized.",
          detail:
            "The agent cannot authenticate until the workspace provision job has been completed. If the job is no longer running, this agent is invalid.",
        },
      };
    }
    const problem = versionProblem(url.searchParams.get("version") ?? "2.0");
    if (problem) {
      return {
        status: 400,
        body: { message: "Unknown or unsupported API version", validations: [{ field: "version", detail: problem }] },
      };
    }
    return undefined;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const url = new URL(req.url ?? "/", "http://coderd");
    const info: PeerRequest = {
      status: 101,
      role: url.searchParams.get("role") ?? undefined,
      version: url.searchParams.get("version"),
      token: req.headers[SESSION_TOKEN_HEADER.toLowerCase()] as string | undefined,
    };
    const rejection = this.check(req);
    if (rejection) {
      info.status = rejection.status;
      this.noteRequest(info);
      const body = goJson(rejection.body);
      socket.end(
        `HTTP/1.1 ${rejection.status} ${http.STATUS_CODES[rejection.status]}\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
      return;
    }
    this.noteRequest(info);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, info, req));
  }

  private noteRequest(info: PeerRequest): void {
    this.requests.push(info);
    this.opts.log?.info({ status: info.status, role: info.role, version: info.version }, "rpc endpoint request");
    this.emit("request", info);
  }

  private accept(ws: WebSocket, info: PeerRequest, req: IncomingMessage): void {
    if (!this.server) {
      ws.terminate();
      return;
    }
    const socket = req.socket as Socket;
    const drpc = new DrpcServer(this.opts.log ? { log: this.opts.log } : {});
    drpc.register(AgentService, this.service(info.role), this.opts.decoders);
    const session = new YamuxSession(websocketStream(ws), {
      client: false,
      keepAliveIntervalMs: this.opts.keepAliveIntervalMs ?? KEEPALIVE_INTERVAL_MS,
      onStream: (stream) => {
        stream.on("error", () => undefined);
        void drpc.serve(stream);
      },
    });
    const conn: PeerConnection = {
      role: info.role,
      version: info.version ?? "2.0",
      remoteAddress: socket.remoteAddress,
      session,
    };
    this.sockets.set(conn, socket);
    if (this.frozen) socket.pause();
    this.connections.add(conn);
    this.opts.log?.info({ role: conn.role, version: conn.version }, "agent connected");
    this.emit("connection", conn);
    conn.session.on("close", () => {
      this.connections.delete(conn);
      this.sockets.delete(conn);
      this.opts.log?.info({ role: conn.role }, "agent disconnected");
      this.emit("disconnect", conn);
    });
  }
}

/** Why a version string is unacceptable to coderd, or undefined when it is fine. */
function versionProblem(version: string): string | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(version);
  if (!match) return `invalid version string: ${version}`;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  if (major !== CURRENT_MAJOR || minor > CURRENT_MINOR) {
    return `version ${version} is not supported; this server speaks ${CURRENT_MAJOR}.0 to ${CURRENT_MAJOR}.${CURRENT_MINOR}`;
  }
  return undefined;
}

function methodName(method: string): string {
  const found = AgentService.methods.find((m) => m.name === method || m.localName === method);
  if (!found) throw new Error(`coderd peer: no Agent method ${JSON.stringify(method)}`);
  return found.name;
}

/** Starts a coderd peer and resolves once it listens. */
export async function startCoderdPeer(opts: CoderdPeerOptions = {}): Promise<CoderdPeer> {
  const peer = new CoderdPeer(opts);
  await peer.start();
  return peer;
}
