import fsSync from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { Counter, type Registry } from "prom-client";
import { ConnectionSlots, IDLE_EVICTION_MS } from "../connection-slots.js";
import type { DrpcServer } from "../drpc/server.js";
import { errorText, UsageError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  claimSocketPath,
  listenPrivate,
  removeOwnSocket,
  socketIdentity,
  type SocketIdentity,
  type SocketPathSource,
} from "../socket-file.js";

/** How long the availability check waits for a server to answer (agent/agentsocket/socket_unix.go). */
export const AVAILABILITY_DIAL_TIMEOUT_MS = 10_000;
/** Mode of the socket's parent directory when it is created (socket_unix.go). */
export const SOCKET_DIR_MODE = 0o700;
/**
 * Connections served at once; a further one takes the slot of a connection
 * idle for IDLE_EVICTION_MS, else is closed on arrival (each CLI call holds one only briefly).
 */
export const MAX_SOCKET_CONNECTIONS = 256;

/** Counts connections closed on arrival because MAX_SOCKET_CONNECTIONS were already open. */
export const CONNECTIONS_REFUSED_METRIC = "agentd_agentsocket_connections_refused_total";
/** Counts idle connections closed to make room for a new one at MAX_SOCKET_CONNECTIONS. */
export const CONNECTIONS_EVICTED_METRIC = "agentd_agentsocket_connections_evicted_total";

/** The flag the socket path comes from, named in every usage error. */
export const AGENT_SOCKET_FLAG = "--agent-socket";
const FLAG = AGENT_SOCKET_FLAG;
/** Where the path comes from: the flag, or the variable Coder's CLIs read too. */
const SOURCE: SocketPathSource = { flag: FLAG, env: "CODER_AGENT_SOCKET_PATH" };


/**
 * The agent socket listener: dRPC directly on a unix stream socket, one
 * DrpcServer.serve per connection. Refuses a path another live server
 * holds, replaces a stale file, and removes its file when it stops.
 */
export class AgentSocketServer {
  private server: net.Server | undefined;
  private readonly conns = new Set<net.Socket>();
  private readonly refused: Counter;
  private readonly evicted: Counter;
  private readonly slots: ConnectionSlots;
  private bound: SocketIdentity | undefined;

  constructor(
    readonly socketPath: string,
    private readonly drpc: DrpcServer,
    private readonly log: Logger,
    registry: Registry,
    idleEvictionMs = IDLE_EVICTION_MS,
  ) {
    this.refused = new Counter({
      name: CONNECTIONS_REFUSED_METRIC,
      help: `Agent socket connections closed on arrival because ${MAX_SOCKET_CONNECTIONS} were already open.`,
      registers: [registry],
    });
    this.evicted = new Counter({
      name: CONNECTIONS_EVICTED_METRIC,
      help: `Idle agent socket connections closed to make room for a new one at ${MAX_SOCKET_CONNECTIONS} open.`,
      registers: [registry],
    });
    this.slots = new ConnectionSlots(MAX_SOCKET_CONNECTIONS, idleEvictionMs);
  }

  /** True while the socket accepts connections. */
  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /**
   * Creates the parent directory (0700) if needed, refuses a path a live
   * server answers on, removes a stale file, listens and makes the socket 0600.
   * Every failure is a UsageError naming --agent-socket.
   */
  async listen(): Promise<void> {
    const dir = path.dirname(this.socketPath);
    try {
      await fs.mkdir(dir, { recursive: true, mode: SOCKET_DIR_MODE });
    } catch (err) {
      throw new UsageError(FLAG, `cannot create directory ${dir}: ${errorText(err)}`);
    }
    await this.clearPath();
    const server = net.createServer((conn) => this.accept(conn));
    await listenPrivate(server, this.socketPath).catch((err: unknown) => {
      throw new UsageError(FLAG, `cannot listen on ${this.socketPath}: ${errorText(err)}`);
    });
    this.bound = socketIdentity(this.socketPath);
    server.on("error", (err) => this.log.error({ err }, "agent socket listener failed"));
    this.server = server;
    this.log.info({ path: this.socketPath }, "agent socket listening");
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

  /** Stops accepting, drops open connections and removes the socket file (if it is still ours). */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const conn of this.conns) conn.destroy();
    await closed;
    removeOwnSocket(this.socketPath, this.bound);
    this.log.info({ path: this.socketPath }, "agent socket closed");
  }

  /** Fails when a live server owns the path; removes a stale file left by one that died. */
  private async clearPath(): Promise<void> {
    const stale = fsSync.existsSync(this.socketPath);
    await claimSocketPath(this.socketPath, SOURCE, AVAILABILITY_DIAL_TIMEOUT_MS);
    if (stale) this.log.info({ path: this.socketPath }, "removed stale agent socket file");
  }


  private accept(conn: net.Socket): void {
    const admission = this.slots.admit(conn);
    if (admission === "refused") {
      this.refused.inc();
      this.log.warn({ limit: MAX_SOCKET_CONNECTIONS }, "agent socket connection refused: too many open");
      conn.destroy();
      return;
    }
    if (admission === "evicted") this.evicted.inc();
    this.conns.add(conn);
    conn.on("error", (err) => this.log.debug({ err: err.message }, "agent socket connection error"));
    void this.drpc.serve(conn).finally(() => this.conns.delete(conn));
  }
}
