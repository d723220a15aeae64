import { once } from "node:events";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { Counter, type Registry } from "prom-client";
import type { DrpcServer } from "../drpc/server.js";
import { errnoCode, errorText, UsageError } from "../errors.js";
import type { Logger } from "../log.js";

/** How long the availability check waits for a server to answer (agent/agentsocket/socket_unix.go). */
export const AVAILABILITY_DIAL_TIMEOUT_MS = 10_000;
/** Mode of the socket's parent directory when it is created (socket_unix.go). */
export const SOCKET_DIR_MODE = 0o700;
/** Mode of the socket file: owner only (socket_unix.go). */
export const SOCKET_FILE_MODE = 0o600;
/** Connections served at once; further ones are closed on arrival (each CLI call holds one only briefly). */
export const MAX_SOCKET_CONNECTIONS = 256;

/** Counts connections closed on arrival because MAX_SOCKET_CONNECTIONS were already open. */
export const CONNECTIONS_REFUSED_METRIC = "agentd_agentsocket_connections_refused_total";

/** The flag the socket path comes from, named in every usage error. */
const FLAG = "--agent-socket";

/** Resolves true when something accepts a connection on `socketPath`. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socketPath);
    const done = (live: boolean) => {
      clearTimeout(timer);
      conn.destroy();
      resolve(live);
    };
    // A listener that accepts but never finishes the handshake counts as live: the path is taken.
    const timer = setTimeout(() => done(true), AVAILABILITY_DIAL_TIMEOUT_MS);
    conn.once("connect", () => done(true));
    conn.once("error", () => done(false));
  });
}

/**
 * The agent socket listener: dRPC directly on a unix stream socket, one
 * DrpcServer.serve per connection. Refuses a path another live server
 * holds, replaces a stale file, and removes its file when it stops.
 */
export class AgentSocketServer {
  private server: net.Server | undefined;
  private readonly conns = new Set<net.Socket>();
  private readonly refused: Counter;

  constructor(
    readonly socketPath: string,
    private readonly drpc: DrpcServer,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.refused = new Counter({
      name: CONNECTIONS_REFUSED_METRIC,
      help: `Agent socket connections closed on arrival because ${MAX_SOCKET_CONNECTIONS} were already open.`,
      registers: [registry],
    });
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
    server.maxConnections = MAX_SOCKET_CONNECTIONS;
    server.on("drop", () => {
      this.refused.inc();
      this.log.warn({ limit: MAX_SOCKET_CONNECTIONS }, "agent socket connection refused: too many open");
    });
    server.listen(this.socketPath);
    await once(server, "listening").catch((err: unknown) => {
      throw new UsageError(FLAG, `cannot listen on ${this.socketPath}: ${errorText(err)}`);
    });
    server.on("error", (err) => this.log.error({ err }, "agent socket listener failed"));
    this.server = server;
    await fs.chmod(this.socketPath, SOCKET_FILE_MODE);
    this.log.info({ path: this.socketPath }, "agent socket listening");
  }

  /** Stops accepting, drops open connections and removes the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const conn of this.conns) conn.destroy();
    await closed;
    await fs.rm(this.socketPath, { force: true });
    this.log.info({ path: this.socketPath }, "agent socket closed");
  }

  /** Fails when a live server owns the path; removes a stale file left by one that died. */
  private async clearPath(): Promise<void> {
    let stat;
    try {
      stat = await fs.lstat(this.socketPath);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return;
      throw new UsageError(FLAG, `cannot inspect ${this.socketPath}: ${errorText(err)}`);
    }
    // Only a socket can be stale: any other file at the path is someone's data, never removed.
    if (!stat.isSocket()) throw new UsageError(FLAG, `${this.socketPath} exists and is not a socket`);
    if (await answers(this.socketPath)) {
      throw new UsageError(FLAG, `socket path ${this.socketPath} is not available: another server is listening on it (Coder's agent? set --agent-socket or CODER_AGENT_SOCKET_PATH to another path)`);
    }
    this.log.info({ path: this.socketPath }, "removing stale agent socket file");
    await fs.rm(this.socketPath, { force: true });
  }

  private accept(conn: net.Socket): void {
    this.conns.add(conn);
    conn.on("error", (err) => this.log.debug({ err: err.message }, "agent socket connection error"));
    void this.drpc.serve(conn).finally(() => this.conns.delete(conn));
  }
}
