import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { ConnectRouter } from "@connectrpc/connect";
import { Counter, type Registry } from "prom-client";
import type { HostPort } from "../config.js";
import { errnoCode, errorText, UsageError } from "../errors.js";
import { lazily } from "../lazy.js";
import type { Logger } from "../log.js";
import { buildInfo } from "../version.js";
import { invalidProtobufAsInvalidArgument } from "./connect-errors.js";
import { isPreflight, RequestGuard, type Refusal } from "./guard.js";
import { BodyError, goJson, MAX_BODY_BYTES, writeError, writeJson } from "./json.js";

/** Route parameters captured from `:name` segments. */
export type Params = Record<string, string>;

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: Params, url: URL) => unknown;

/**
 * Takes an upgrade request's socket. A handler that returns a promise may
 * load its code first; when that promise rejects the handler has not taken
 * the socket, and the server answers 500 on it.
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void | Promise<void>;

/**
 * What a route declares about itself to the HTTP guard that every request
 * passes before any handler runs.
 */
export interface RouteOptions {
  /**
   * The route takes a raw request body (`application/octet-stream`), as
   * `write-file` does; other state-changing routes take JSON or Connect.
   */
  rawBody?: boolean;
  /**
   * Served without the bearer token: the route holds no data and changes
   * nothing (liveness, the dashboard's static assets). Host and Origin checks
   * still apply.
   */
  public?: boolean;
}

/** Adds Connect services to the router. */
export type ConnectRegistration = (router: ConnectRouter) => void;

/** A request handler in node's shape, as connect-node's adapter returns. */
type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** A named readiness condition reported by `/readyz`. */
export type ReadinessCheck = () => boolean;

/** How long `close` waits for in-flight requests before cutting them off. */
const CLOSE_GRACE_MS = 3000;

interface Route {
  method: string;
  segments: string[];
  handler: RouteHandler;
  options: RouteOptions;
}

/**
 * The one HTTP server of agentd: REST routes in Coder's shapes, WebSocket
 * upgrades, Connect services, and the health and metrics endpoints. Parts
 * register what they serve before `listen`.
 */
export class HttpServer {
  private readonly routes: Route[] = [];
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private readonly connectRoutes: (() => ConnectRegistration | Promise<ConnectRegistration>)[] = [];
  /** connect-node's handler for every registered service, built by the first request no REST route takes. */
  private readonly connectHandler = lazily(() => this.loadConnect());
  private readonly readiness = new Map<string, ReadinessCheck>();
  private readonly drainHooks: (() => unknown)[] = [];
  private readonly upgraded = new Set<Duplex>();
  private server: http.Server | undefined;
  private listening = false;
  private readonly refused: Counter<"status">;

  constructor(
    private readonly addr: HostPort,
    private readonly log: Logger,
    private readonly registry: Registry,
    private readonly guard = new RequestGuard(),
  ) {
    this.refused = new Counter({
      name: "agentd_http_requests_refused_total",
      help: "HTTP requests the guard turned away before any handler ran (403 Host or Origin, 401 token, 415 content type).",
      labelNames: ["status"],
      registers: [registry],
    });
    this.route("GET", "/healthz", (_req, res) => writeJson(res, 200, { status: "ok" }), { public: true });
    this.route("GET", "/readyz", (_req, res) => this.serveReady(res));
    this.route("GET", "/metrics", (_req, res) => this.serveMetrics(res));
  }

  /** Registers a REST route; `pattern` segments starting with `:` are parameters. */
  route(method: string, pattern: string, handler: RouteHandler, options: RouteOptions = {}): void {
    this.routes.push({ method, segments: splitPath(pattern), handler, options });
  }

  /** Registers a WebSocket (or other upgrade) endpoint at an exact path. */
  upgrade(pathname: string, handler: UpgradeHandler): void {
    this.upgrades.set(pathname, handler);
  }

  /** Registers Connect services (served with the Connect, gRPC and gRPC-Web protocols). */
  connect(register: ConnectRegistration): void {
    this.connectRoutes.push(() => register);
  }

  /**
   * Registers Connect services whose code `load` imports. Connect's server
   * side and every service's code load with the first request that no REST
   * route takes, so an agentd nobody calls over Connect never holds them.
   */
  connectLazily(load: () => Promise<ConnectRegistration>): void {
    this.connectRoutes.push(load);
  }

  /**
   * Runs `hook` during `close`, once the listener has stopped accepting: the
   * owner of long-lived requests (WebSockets, blocked waits) ends them there.
   */
  onDrain(hook: () => unknown): void {
    this.drainHooks.push(hook);
  }

  /** Adds a condition `/readyz` requires. */
  addReadinessCheck(name: string, check: ReadinessCheck): void {
    this.readiness.set(name, check);
  }

  /** The bound address (useful with port 0). */
  address(): HostPort {
    const a = this.server?.address();
    if (!a || typeof a === "string") return this.addr;
    return { host: a.address, port: a.port };
  }

  async listen(): Promise<void> {
    const server = http.createServer((req, res) => {
      if (this.guardRequest(req, res)) return;
      if (this.findRoute(req)) this.serveRoutes(req, res);
      else this.serveConnect(req, res);
    });
    server.on("upgrade", (req, socket, head) => this.serveUpgrade(req, socket, head));
    server.on("clientError", (_err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => reject(listenError(err, this.addr)));
      server.listen(this.addr.port, this.addr.host, () => resolve());
    });
    server.on("error", (err) => this.log.error({ err }, "http server error"));
    this.server = server;
    this.listening = true;
    this.log.info({ addr: this.address() }, "http server listening");
  }

  /**
   * Stops accepting, lets the drain hooks end long-lived requests, lets
   * in-flight requests finish briefly, then cuts off whatever is left,
   * upgraded sockets included.
   */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.listening = false;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled(this.drainHooks.map(async (hook) => hook()));
    server.closeIdleConnections();
    const timer = setTimeout(() => {
      server.closeAllConnections();
      for (const socket of this.upgraded) socket.destroy();
    }, CLOSE_GRACE_MS);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }

  /** Every readiness condition `/readyz` requires, evaluated now. */
  readinessChecks(): Record<string, boolean> {
    const checks: Record<string, boolean> = { http: this.listening };
    for (const [name, check] of this.readiness) checks[name] = safeCheck(check);
    return checks;
  }

  private serveReady(res: ServerResponse): void {
    const checks = this.readinessChecks();
    const ready = Object.values(checks).every(Boolean);
    const { version, commit } = buildInfo();
    writeJson(res, ready ? 200 : 503, { ready, version, commit, checks });
  }

  private async serveMetrics(res: ServerResponse): Promise<void> {
    const body = await this.registry.metrics();
    res.writeHead(200, { "Content-Type": this.registry.contentType });
    res.end(body);
  }

  /**
   * Runs the guard on a plain request; answers a refusal or a CORS preflight
   * itself and returns true when the request is done.
   */
  private guardRequest(req: IncomingMessage, res: ServerResponse): boolean {
    for (const [name, value] of Object.entries(this.guard.corsHeaders(req))) res.setHeader(name, value);
    const refusal = this.guard.check(req, this.findRoute(req)?.route.options);
    if (refusal) {
      this.logRefusal(req, refusal);
      if (refusal.status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="agentd"');
      writeError(res, refusal.status, refusal.message);
      req.resume();
      return true;
    }
    if (isPreflight(req)) {
      res.writeHead(204);
      res.end();
      return true;
    }
    return false;
  }

  /** Counts a refusal; logs it at debug only, so a hostile page cannot flood the log (the client gets the reason). */
  private logRefusal(req: IncomingMessage, refusal: Refusal): void {
    this.refused.inc({ status: refusal.status });
    const { host, origin } = req.headers;
    this.log.debug({ method: req.method, path: req.url?.split("?")[0], host, origin, status: refusal.status }, refusal.message);
  }

  /** The route `req` addresses (path and method), with its parameters. */
  private findRoute(req: IncomingMessage): { route: Route; params: Params } | undefined {
    const segments = splitPath(new URL(req.url ?? "/", "http://agentd").pathname);
    for (const route of this.routes) {
      const params = matchSegments(route.segments, segments);
      if (params && route.method === req.method) return { route, params };
    }
    return undefined;
  }

  /** Hands `req` to the Connect services; what none of them serves falls back to the REST 404/405. */
  private serveConnect(req: IncomingMessage, res: ServerResponse): void {
    this.connectHandler().then(
      (handle) => {
        try {
          handle(req, res);
        } catch (err) {
          this.failRequest(res, err);
        }
      },
      (err: unknown) => this.failRequest(res, err),
    );
  }

  private async loadConnect(): Promise<NodeHandler> {
    const [{ connectNodeAdapter }, registrations] = await Promise.all([
      import("@connectrpc/connect-node"),
      Promise.all(this.connectRoutes.map((load) => load())),
    ]);
    return connectNodeAdapter({
      routes: (router) => {
        registrations.forEach((register) => register(router));
        router.handlers.forEach((h, i) => (router.handlers[i] = invalidProtobufAsInvalidArgument(h)));
      },
      fallback: (req, res) => this.serveRoutes(req as IncomingMessage, res as ServerResponse),
      // The same bound as REST bodies, checked after decompression too.
      readMaxBytes: MAX_BODY_BYTES,
    });
  }

  private serveRoutes(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://agentd");
    const found = this.findRoute(req);
    if (found) {
      Promise.resolve()
        .then(() => found.route.handler(req, res, found.params, url))
        .catch((err: unknown) => this.failRequest(res, err));
      return;
    }
    const segments = splitPath(url.pathname);
    if (this.routes.some((route) => matchSegments(route.segments, segments))) {
      res.writeHead(405, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("Method Not Allowed\n");
      return;
    }
    res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" });
    res.end("404 page not found\n");
  }

  private failRequest(res: ServerResponse, err: unknown): void {
    if (err instanceof BodyError) {
      if (!res.headersSent) writeError(res, err.status, err.message);
      return;
    }
    this.log.error({ err }, "request handler failed");
    if (!res.headersSent) writeError(res, 500, "Internal error.", errorText(err));
    else res.destroy();
  }

  private serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", (err) => this.log.debug({ err }, "upgrade socket error"));
    this.upgraded.add(socket);
    socket.once("close", () => this.upgraded.delete(socket));
    const refusal = this.guard.check(req);
    if (refusal) {
      this.logRefusal(req, refusal);
      endUpgrade(socket, refusal.status, { message: refusal.message });
      return;
    }
    const url = new URL(req.url ?? "/", "http://agentd");
    const handler = this.upgrades.get(url.pathname);
    if (!handler) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    let taking: void | Promise<void>;
    try {
      taking = handler(req, socket, head, url);
    } catch (err) {
      this.log.error({ err }, "upgrade handler failed");
      socket.destroy();
      return;
    }
    taking?.catch((err: unknown) => {
      this.log.error({ err }, "upgrade handler failed");
      endUpgrade(socket, 500, { message: "Internal error.", detail: errorText(err) });
    });
  }
}

/** Answers an upgrade request with a JSON error envelope instead of switching protocols, and closes. */
function endUpgrade(socket: Duplex, status: number, envelope: { message: string; detail?: string }): void {
  const body = goJson(envelope);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function splitPath(p: string): string[] {
  return p.split("/").filter((s) => s !== "");
}

function matchSegments(pattern: string[], actual: string[]): Params | undefined {
  if (pattern.length !== actual.length) return undefined;
  const params: Params = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const a = actual[i]!;
    if (p.startsWith(":")) {
      try {
        params[p.slice(1)] = decodeURIComponent(a);
      } catch {
        params[p.slice(1)] = a;
      }
    } else if (p !== a) {
      return undefined;
    }
  }
  return params;
}

function safeCheck(check: ReadinessCheck): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

function listenError(err: Error, addr: HostPort): Error {
  const where = `${addr.host}:${addr.port}`;
  switch (errnoCode(err)) {
    case "EADDRINUSE":
      return new UsageError("--http-addr", `${where} is already in use`);
    case "EACCES":
      return new UsageError("--http-addr", `no permission to listen on ${where}`);
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new UsageError("--http-addr", `cannot listen on ${where}: address not available`);
    default:
      return err;
  }
}
