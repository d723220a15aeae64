import type { IncomingMessage } from "node:http";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Counter, Gauge, type Registry } from "prom-client";
import { WebSocket } from "ws";
import { Agent as AgentService } from "../../gen/coder/agent/v2/agent_pb.js";
import { createDrpcTransport } from "../drpc/transport.js";
import { errnoCode, errorText } from "../errors.js";
import type { Logger } from "../log.js";
import { AGENT_RPC_PATH, SESSION_TOKEN_HEADER } from "./rpc-endpoint.js";
import { NOT_CONNECTED_MESSAGE, type AgentClient, type Upstream } from "./upstream.js";
import { websocketStream, WS_MAX_PAYLOAD } from "./websocket-stream.js";
import { KEEPALIVE_INTERVAL_MS, KEEPALIVE_TIMEOUT_MS, YamuxSession } from "./yamux/session.js";
import type { YamuxCall } from "./yamux/call.js";
import type { YamuxStream } from "./yamux/stream.js";

/**
 * The Agent API version dialed: the lowest one that carries everything
 * agentd sends. UpdateAppStatus and CreateSubAgentRequest.id arrived in 2.8,
 * ReportBoundaryLogsRequest.session_id / confined_process_name and
 * BoundaryLog.sequence_number in 2.9 (tailnet/proto/version.go). Boundary
 * requests are forwarded unchanged, session_id included, so 2.9; nothing
 * newer (PushContextState, stats fields) is used.
 */
export const AGENT_API_VERSION = "2.9";
/** The role sent to coderd: anything but `agent`, so coderd does not treat this link as the Go agent's. */
export const AGENT_ROLE = "agentd";
/** First reconnect delay (Coder's agent runLoop: retry.New(100*time.Millisecond, 10*time.Second)). */
export const BACKOFF_INITIAL_MS = 100;
/** Longest reconnect delay (Coder's agent runLoop, as above). */
export const BACKOFF_MAX_MS = 10_000;
/**
 * Each delay is shortened by a random part of up to this fraction, so many
 * agents cut off together do not redial in step; the delay never exceeds
 * the cap (agentd's own choice).
 */
export const BACKOFF_JITTER = 0.25;
/** A connection that lasted this long resets the backoff; shorter ones keep it growing. */
export const STABLE_CONNECTION_MS = 10_000;
/** Time allowed for the TCP connect and WebSocket handshake. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long calls in flight may go on over a session coderd told to go away before it is closed. */
const GO_AWAY_DRAIN_MS = 30_000;
/** How long stop waits for coderd to answer the WebSocket close. */
const CLOSE_GRACE_MS = 1000;
/** Most of an error response body read for coderd's message. */
const MAX_ERROR_BODY_BYTES = 64 << 10;

/** Where and how CoderdUpstream reaches coderd. */
export interface CoderdUpstreamOptions {
  /** The coderd URL (`--coder-url`). */
  url: URL;
  /** The agent token. */
  token: string;
  /** The link's logger (connects, disconnects, dial failures). */
  log: Logger;
  /** Where the agentd_coderd_* metrics are registered; none when absent. */
  registry?: Registry;
  /** yamux keepalive ping interval (default 30 s, as hashicorp/yamux). */
  keepAliveIntervalMs?: number;
  /** How long a keepalive ping may go unanswered before the link is dropped (default 10 s). */
  keepAliveTimeoutMs?: number;
  /** First reconnect delay (default BACKOFF_INITIAL_MS). */
  backoffInitialMs?: number;
  /** Longest reconnect delay (default BACKOFF_MAX_MS). */
  backoffMaxMs?: number;
}

/** `{coder-url}/api/v2/workspaceagents/me/rpc?role=agentd&version=2.9` as a ws:// or wss:// URL. */
export function agentRpcUrl(base: URL): URL {
  const url = new URL(AGENT_RPC_PATH, base);
  url.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  // Keys in sorted order, as Go's url.Values.Encode writes them.
  url.search = new URLSearchParams([
    ["role", AGENT_ROLE],
    ["version", AGENT_API_VERSION],
  ]).toString();
  return url;
}

/**
 * The wait before redial number `failures` (0 for the first): `initialMs`
 * doubling per failure up to `maxMs`, less a random BACKOFF_JITTER part.
 */
export function backoffDelay(failures: number, initialMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30));
  return Math.round(base * (1 - BACKOFF_JITTER * random()));
}

/** Why a dial failed, as the `reason` label of the dial-failure counter. */
function statusReason(status: number): string {
  if (status === 400) return "bad_request";
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  return "http_error";
}

/**
 * The link to a real coderd, as Coder's agent makes it: a WebSocket to the
 * agent RPC endpoint carrying yamux, a fresh yamux stream per RPC with dRPC
 * on it. It reconnects with exponential backoff and jitter; while it is
 * down every call fails at once with Unavailable "agent not connected to
 * coderd".
 */
export class CoderdUpstream implements Upstream {
  readonly name = "upstream";
  readonly description: string;
  readonly client: AgentClient;
  private readonly log: Logger;
  private readonly rpcUrl: URL;
  private session: YamuxSession | undefined;
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private failures = 0;
  private lastFailure: string | undefined;
  private readonly connected: Gauge;
  private readonly connects: Counter;
  private readonly dialFailures: Counter<"reason">;
  private readonly disconnects: Counter;

  constructor(private readonly opts: CoderdUpstreamOptions) {
    this.description = opts.url.toString();
    this.log = opts.log;
    this.rpcUrl = agentRpcUrl(opts.url);
    const registers = opts.registry ? [opts.registry] : [];
    this.connected = new Gauge({
      name: "agentd_coderd_connected",
      help: "1 while agentd has a live connection to coderd, else 0.",
      registers,
    });
    this.connects = new Counter({
      name: "agentd_coderd_connects_total",
      help: "Connections to coderd established.",
      registers,
    });
    this.dialFailures = new Counter({
      name: "agentd_coderd_dial_failures_total",
      help: "Failed attempts to connect to coderd, by reason (network, timeout, bad_request, unauthorized, forbidden, http_error).",
      labelNames: ["reason"],
      registers,
    });
    this.disconnects = new Counter({
      name: "agentd_coderd_disconnects_total",
      help: "Established connections to coderd that ended.",
      registers,
    });
    this.client = createClient(AgentService, createDrpcTransport({ dial: () => this.openStream(), dialCall: () => this.openCall() }));
  }

  /** True while calls can be made: a session is up and coderd has not told it to go away. */
  isConnected(): boolean {
    return this.session?.acceptsStreams ?? false;
  }

  /** Starts connecting in the background; the agent runs whether or not coderd is up. */
  async start(): Promise<void> {
    this.stopped = false;
    this.log.info({ url: this.rpcUrl.toString() }, "connecting to coderd");
    this.dial();
  }

  /** Says Go Away and closes the WebSocket, waiting briefly for coderd's close frame. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    this.session?.close();
    if (!ws || ws.readyState === ws.CLOSED) return;
    if (ws.readyState !== ws.OPEN && ws.readyState !== ws.CLOSING) {
      ws.terminate();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, CLOSE_GRACE_MS);
      timer.unref();
      ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private openStream(): Promise<YamuxStream> {
    return this.opened((session) => session.openStream());
  }

  private openCall(): Promise<YamuxCall> {
    return this.opened((session) => session.openCall());
  }

  /** A stream opened by `open` on the live session; Unavailable "not connected" when there is none. */
  private async opened<T>(open: (session: YamuxSession) => Promise<T>): Promise<T> {
    const session = this.session;
    try {
      if (session?.acceptsStreams) return await open(session);
    } catch {
      // Shut down or told to go away: as good as not connected.
    }
    throw new ConnectError(NOT_CONNECTED_MESSAGE, Code.Unavailable);
  }

  private dial(): void {
    if (this.stopped) return;
    let settled = false;
    const ws = new WebSocket(this.rpcUrl, {
      headers: { [SESSION_TOKEN_HEADER]: this.opts.token },
      maxPayload: WS_MAX_PAYLOAD,
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    this.ws = ws;
    const fail = (reason: string, detail: Record<string, unknown>) => {
      if (settled) return;
      settled = true;
      ws.terminate();
      this.dialFailures.inc({ reason });
      this.scheduleRetry(reason, detail);
    };
    ws.on("unexpected-response", (_req, res: IncomingMessage) => {
      readErrorBody(res).then((body) => fail(statusReason(res.statusCode ?? 0), { status: res.statusCode, ...body }));
    });
    ws.on("error", (err) => {
      const timedOut = /timed out|timeout/i.test(err.message);
      fail(timedOut ? "timeout" : "network", { error: errnoCode(err) ?? errorText(err) });
    });
    ws.on("open", () => {
      if (settled || this.stopped) {
        ws.terminate();
        return;
      }
      settled = true;
      this.onOpen(ws);
    });
  }

  private onOpen(ws: WebSocket): void {
    const session = new YamuxSession(websocketStream(ws), {
      client: true,
      keepAliveIntervalMs: this.opts.keepAliveIntervalMs ?? KEEPALIVE_INTERVAL_MS,
      keepAliveTimeoutMs: this.opts.keepAliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS,
    });
    const since = Date.now();
    this.session = session;
    this.lastFailure = undefined;
    this.connected.set(1);
    this.connects.inc();
    this.log.info({ url: this.rpcUrl.toString(), version: AGENT_API_VERSION, role: AGENT_ROLE }, "connected to coderd");
    session.on("goAway", () => {
      // New calls cannot use this session; let those in flight finish, then reconnect.
      this.log.info({ url: this.rpcUrl.toString() }, "coderd said go away; reconnecting once calls in flight finish");
      this.connected.set(0);
      session.closeWhenIdle(GO_AWAY_DRAIN_MS);
    });
    session.on("close", (err) => {
      if (this.session === session) this.session = undefined;
      this.connected.set(0);
      this.disconnects.inc();
      if (this.stopped) return;
      if (Date.now() - since >= STABLE_CONNECTION_MS) this.failures = 0;
      this.scheduleRetry("disconnected", { error: err ? errorText(err) : undefined });
    });
  }

  /** Logs a failure once (repeats of the same one go to debug) and dials again after a jittered backoff. */
  private scheduleRetry(reason: string, detail: Record<string, unknown>): void {
    if (this.stopped) return;
    const initial = this.opts.backoffInitialMs ?? BACKOFF_INITIAL_MS;
    const max = this.opts.backoffMaxMs ?? BACKOFF_MAX_MS;
    const delayMs = backoffDelay(this.failures, initial, max);
    this.failures++;
    const key = JSON.stringify({ reason, ...detail });
    const fields = { reason, ...detail, retryInMs: delayMs, attempt: this.failures };
    if (key !== this.lastFailure) {
      const text = reason === "disconnected" ? "disconnected from coderd" : "cannot connect to coderd";
      this.log.warn(fields, text);
    } else this.log.debug(fields, "cannot connect to coderd (again)");
    this.lastFailure = key;
    this.timer = setTimeout(() => this.dial(), delayMs);
    this.timer.unref();
  }
}

/** coderd's codersdk.Response `message` and `detail` from an error reply, bounded. */
async function readErrorBody(res: IncomingMessage): Promise<{ message?: string; detail?: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_ERROR_BODY_BYTES) break;
      chunks.push(chunk);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { message?: unknown; detail?: unknown };
    return {
      ...(typeof body.message === "string" ? { message: body.message } : {}),
      ...(typeof body.detail === "string" && body.detail !== "" ? { detail: body.detail } : {}),
    };
  } catch {
    return {};
  } finally {
    res.destroy();
  }
}
