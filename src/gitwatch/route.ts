import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { canonicalUuid } from "../http/chat.js";
import { goJson } from "../http/json.js";
import type { Logger } from "../log.js";
import { UNKNOWN_MESSAGE_TYPE, type GitServerMessage } from "./messages.js";
import type { GitWatchMetrics } from "./metrics.js";
import { GitWatcher, type WatcherDeps } from "./watcher.js";

/** Largest client message accepted; a larger one closes the socket 1009 (agentgit's conn.SetReadLimit(1 << 22)). */
export const MAX_CLIENT_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Keep-alive ping interval. */
export const PING_INTERVAL_MS = 30_000;
/** A connection that does not answer a ping within this long is cut. */
export const PONG_TIMEOUT_MS = 5_000;
/** Close code for undecodable client frames and shutdown (wsjson's decoder closes with StatusGoingAway). */
const CLOSE_GOING_AWAY = 1001;
/** How long a closing connection waits for the peer's close frame. */
const CLOSE_HANDSHAKE_MS = 1000;
/**
 * Replies queued for a client past which its frames stop being read until
 * they drain, as Coder's handler blocks on its write (bounds the memory a
 * client that sends without reading can make the agent hold).
 */
const MAX_QUEUED_REPLY_BYTES = 1024 * 1024;

/** Keep-alive timing of git watch connections. */
export interface KeepAlive {
  pingIntervalMs: number;
  pongTimeoutMs: number;
}

/**
 * Serves `GET /api/v0/git/watch?chat_id=<uuid>` (GIT_WATCH_PATH): one GitWatcher per
 * connection, Coder's JSON messages as text frames.
 */
export class GitWatchRoute {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE_BYTES });
  private readonly sockets = new Set<WebSocket>();

  constructor(
    private readonly deps: WatcherDeps,
    private readonly metrics: GitWatchMetrics,
    private readonly log: Logger,
    private readonly keepAlive: KeepAlive = { pingIntervalMs: PING_INTERVAL_MS, pongTimeoutMs: PONG_TIMEOUT_MS },
  ) {
    this.wss.on("error", (err) => this.log.warn({ err }, "git watch server error"));
  }

  /** The `HttpServer.upgrade` handler. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void => {
    const raw = url.searchParams.get("chat_id");
    const chatId = canonicalUuid(raw ?? undefined);
    if (raw !== null && raw !== "" && chatId === undefined) {
      rejectUpgrade(socket, 400, "Bad Request", "Invalid chat_id.", "chat_id must be a UUID.");
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, chatId));
  };

  /**
   * Closes every open connection with 1001 (going away); a peer that does not
   * answer the close within CLOSE_HANDSHAKE_MS is cut.
   */
  async close(): Promise<void> {
    const closing = [...this.sockets].map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.once("close", () => resolve());
          ws.close(CLOSE_GOING_AWAY);
          setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
        }),
    );
    await Promise.all(closing);
  }

  private serve(ws: WebSocket, chatId: string | undefined): void {
    const log = this.log.child({ chatId });
    this.sockets.add(ws);
    this.metrics.connections.inc();
    const send = (msg: GitServerMessage): Promise<void> => this.send(ws, JSON.stringify(msg));
    const watcher = new GitWatcher(chatId, { ...this.deps, log }, (body) =>
      this.send(ws, body).catch((err: unknown) => {
        log.debug({ err }, "git watch send failed; closing");
        ws.terminate();
      }),
    );
    const keepAlive = startKeepAlive(ws, this.keepAlive);
    ws.on("error", (err) => log.debug({ err }, "git watch socket error"));
    ws.on("message", (data, isBinary) => {
      const type = isBinary ? undefined : messageType(data);
      if (type === undefined) {
        ws.close(CLOSE_GOING_AWAY);
        return;
      }
      if (type === "refresh") {
        watcher.refresh();
        return;
      }
      const reply = send({ type: "error", message: UNKNOWN_MESSAGE_TYPE }).then(
        () => true,
        () => ws.terminate(),
      );
      if (ws.bufferedAmount > MAX_QUEUED_REPLY_BYTES && !ws.isPaused) {
        ws.pause();
        // Replies are written in order: once this one is out, the queue has drained.
        void reply.then((sent) => sent && ws.resume());
      }
    });
    ws.on("close", () => {
      keepAlive();
      watcher.close();
      this.sockets.delete(ws);
      this.metrics.connections.dec();
    });
  }

  /** Sends one text frame; a Buffer body is shared as is by every socket it goes to. */
  private send(ws: WebSocket, body: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (ws.readyState !== ws.OPEN) return reject(new Error("socket is not open"));
      ws.send(body, { binary: false }, (err) => {
        if (err) return reject(err);
        this.metrics.bytesSent.inc(typeof body === "string" ? Buffer.byteLength(body) : body.length);
        resolve();
      });
    });
  }
}

/** Answers an upgrade request with Coder's JSON error envelope instead of switching protocols. */
function rejectUpgrade(socket: Duplex, status: number, reason: string, message: string, detail: string): void {
  const body = goJson({ message, detail });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * The `type` of a client message, "" when absent; undefined when the frame
 * is not a JSON object as Go's json.Unmarshal into the message struct would
 * reject it (not JSON, not an object, or a non-string type).
 */
function messageType(data: RawData): string | undefined {
  let parsed: unknown;
  try {
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
  if (parsed === null) return "";
  if (typeof parsed !== "object" || Array.isArray(parsed)) return undefined;
  // Go matches struct fields case-insensitively when no exact key exists.
  const obj = parsed as Record<string, unknown>;
  const key = "type" in obj ? "type" : Object.keys(obj).find((k) => k.toLowerCase() === "type");
  const type = key === undefined ? undefined : obj[key];
  if (type === undefined || type === null) return "";
  return typeof type === "string" ? type : undefined;
}

/**
 * Pings every `pingIntervalMs` and cuts a connection whose pong has not come
 * `pongTimeoutMs` after the ping; returns the stop. While a ping is
 * unanswered no other is sent, so a late pong can never cancel a newer ping's timer.
 */
function startKeepAlive(ws: WebSocket, { pingIntervalMs, pongTimeoutMs }: KeepAlive): () => void {
  let pongTimer: NodeJS.Timeout | undefined;
  const interval = setInterval(() => {
    // ping throws once a close has begun.
    if (ws.readyState !== ws.OPEN || pongTimer) return;
    ws.ping();
    pongTimer = setTimeout(() => ws.terminate(), pongTimeoutMs);
    pongTimer.unref();
  }, pingIntervalMs);
  interval.unref();
  ws.on("pong", () => {
    clearTimeout(pongTimer);
    pongTimer = undefined;
  });
  return () => {
    clearInterval(interval);
    clearTimeout(pongTimer);
  };
}
