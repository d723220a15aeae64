import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { ConnectionSlots, IDLE_EVICTION_MS } from "../connection-slots.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";
import {
  claimSocketPath,
  listenPrivate,
  removeOwnSocket,
  socketIdentity,
  type SocketIdentity,
  type SocketPathSource,
} from "../socket-file.js";
import { decodeFrameMessage, FrameDecoder, FrameError, type BoundaryFrameMessage } from "./codec.js";

/** The flag the socket path comes from, named in every error about it. */
export const BOUNDARY_SOCKET_FLAG = "--boundary-socket";
/** Where the path comes from: the flag, or Coder's variable boundary and the Go agent read too. */
const SOURCE: SocketPathSource = { flag: BOUNDARY_SOCKET_FLAG, env: "CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH" };

/**
 * Boundary connections served at once; past it a new connection takes the
 * slot of one idle for IDLE_EVICTION_MS or is closed on accept (agentd's own bound: one boundary process holds one connection, so
 * this leaves ample room while keeping file descriptors bounded).
 */
export const MAX_CONNECTIONS = 1024;

/** What the server tells its owner. */
export interface SocketServerEvents {
  /**
   * The frames decoded from one read, in order; called synchronously from the
   * socket's data handler. `connection` numbers the socket connection they
   * arrived on, from 1 up, never reused while this server lives.
   */
  onMessages(messages: BoundaryFrameMessage[], connection: number): void;
  onConnectionsChanged(open: number): void;
  onRefused(): void;
  /** A connection idle too long was closed to make room for a new one. */
  onEvicted?(): void;
}

/**
 * The unix socket boundary writes frames to: one reader per connection,
 * framing errors close that connection only, undecodable bodies are skipped.
 */
export class SocketServer {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly slots: ConnectionSlots;
  private bound: SocketIdentity | undefined;
  /** Open connections by number, for pause and resume. */
  private readonly byNumber = new Map<number, net.Socket>();
  private connections = 0;

  constructor(
    private readonly socketPath: string,
    private readonly events: SocketServerEvents,
    private readonly log: Logger,
    maxConnections = MAX_CONNECTIONS,
    idleEvictionMs = IDLE_EVICTION_MS,
  ) {
    this.slots = new ConnectionSlots(maxConnections, idleEvictionMs);
  }

  /** True while accepting connections. */
  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /**
   * Removes a stale socket file and listens (socket 0600); rejects with the
   * reason it could not, never taking a path a live server answers on nor
   * removing a file that is not a socket.
   */
  async listen(): Promise<void> {
    const dir = path.dirname(this.socketPath);
    if (!fs.existsSync(dir)) throw new Error(`socket directory ${dir} does not exist`);
    await claimSocketPath(this.socketPath, SOURCE);
    const server = net.createServer((socket) => this.serve(socket));
    await listenPrivate(server, this.socketPath);
    this.bound = socketIdentity(this.socketPath);
    server.on("error", (err) => this.log.warn({ err: errorText(err) }, "boundary socket accept error"));
    this.server = server;
  }

  /**
   * Listens again after the socket file was removed: the old listener stops
   * accepting, open connections carry on.
   */
  async relisten(): Promise<void> {
    this.server?.close();
    this.server = undefined;
    await this.listen();
  }

  /** Stops reading connection `connection` (backpressure); its frames wait in the kernel's buffer and boundary's. */
  pause(connection: number): void {
    this.byNumber.get(connection)?.pause();
  }

  /** Reads connection `connection` again after `pause`. */
  resume(connection: number): void {
    this.byNumber.get(connection)?.resume();
  }

  /** Stops accepting, closes every connection and removes the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    try {
      removeOwnSocket(this.socketPath, this.bound);
    } catch (err) {
      this.log.warn({ err: errorText(err) }, "could not remove boundary socket");
    }
  }

  private serve(socket: net.Socket): void {
    const admission = this.slots.admit(socket);
    if (admission === "refused") {
      socket.destroy();
      this.events.onRefused();
      return;
    }
    if (admission === "evicted") this.events.onEvicted?.();
    this.sockets.add(socket);
    this.events.onConnectionsChanged(this.sockets.size);
    const decoder = new FrameDecoder();
    const connection = ++this.connections;
    this.byNumber.set(connection, socket);
    socket.on("error", (err) => this.log.debug({ err: errorText(err) }, "boundary connection error"));
    socket.on("close", () => {
      this.sockets.delete(socket);
      this.byNumber.delete(connection);
      this.events.onConnectionsChanged(this.sockets.size);
    });
    socket.on("data", (chunk: Buffer) => {
      decoder.push(chunk);
      try {
        this.readFrames(socket, decoder, connection);
      } catch (err) {
        // A fault of agentd's own: it costs this connection (boundary dials again), never the daemon.
        this.log.error({ err: errorText(err), connection }, "boundary connection failed; closed");
        socket.destroy();
      }
    });
  }

  private readFrames(socket: net.Socket, decoder: FrameDecoder, connection: number): void {
    const messages: BoundaryFrameMessage[] = [];
    this.decodeFrames(socket, decoder, messages);
    if (messages.length > 0) this.events.onMessages(messages, connection);
  }

  private decodeFrames(socket: net.Socket, decoder: FrameDecoder, messages: BoundaryFrameMessage[]): void {
    while (!socket.destroyed) {
      let frame;
      try {
        frame = decoder.next();
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        this.log.warn({ err: err.message }, "read frame error");
        socket.destroy();
        return;
      }
      if (!frame) return;
      let message: BoundaryFrameMessage;
      try {
        message = decodeFrameMessage(frame);
      } catch (err) {
        this.log.warn({ err: errorText(err), tag: frame.tag }, "read frame error");
        continue;
      }
      if (message.kind === "unknown") this.log.warn({ tag: frame.tag }, "unknown boundary message variant");
      else messages.push(message);
    }
  }
}
