import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import net from "node:net";

/** What the guard is configured with (`--allowed-host`, `--allowed-origin`, `--http-token-file`). */
export interface GuardOptions {
  /** Extra `Host` names (or `name:port`) accepted besides loopback. */
  allowedHosts?: readonly string[];
  /** Origins (`scheme://host[:port]`) whose pages may call the API. */
  allowedOrigins?: readonly string[];
  /** When set, every non-public route needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
}

/** What a route tells the guard about itself (see RouteOptions in server.ts). */
export interface GuardRoute {
  rawBody?: boolean;
  public?: boolean;
}

/** The parts of a request the guard looks at. */
export interface GuardRequest {
  method?: string | undefined;
  headers: IncomingHttpHeaders;
}

/** Why a request was turned away: the status and a one-line message for the client. */
export interface Refusal {
  status: 401 | 403 | 415;
  message: string;
}

/** Methods that change nothing; every other method is state-changing. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Content types a browser sends cross-origin without a CORS preflight (the
 * Fetch standard's "CORS-safelisted request-header" list): a state-changing
 * request from a page must not use them.
 */
const SIMPLE_CONTENT_TYPES = new Set(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]);

/** The content type of a raw request body (write-file). */
const RAW_BODY_CONTENT_TYPE = "application/octet-stream";

/** How long a browser may cache a preflight answer (seconds; Chromium caps it at 7200). */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** `Sec-Fetch-Site` values that mean the request did not come from another site's page. */
const FIRST_PARTY_FETCH_SITES = new Set(["same-origin", "none"]);

/**
 * The one check every HTTP request passes before any handler runs:
 *
 * 1. `Host` is a loopback name or address, or an allowed host (DNS rebinding) → else 403.
 * 2. A request carrying `Origin` comes from an allowed origin or from agentd's
 *    own pages (`http://<Host>`); a browser request marked cross-site by
 *    `Sec-Fetch-Site` must carry such an Origin → else 403.
 * 3. With a token configured, every non-public route needs `Authorization: Bearer <token>` → else 401.
 * 4. A state-changing request from a browser (it carries `Origin` or
 *    `Sec-Fetch-Site`) must not use a type a page can send without a
 *    preflight, nor omit it; raw-body routes take `application/octet-stream` → else 415.
 *
 * Clients that are not browsers (coderd's Go client, the CLI, curl) send
 * neither Origin nor Sec-Fetch-Site and often no Content-Type (Coder's
 * agentconn sends none, even for JSON and write-file): no web page can make
 * such a request, so rule 4 leaves them alone.
 */
export class RequestGuard {
  private readonly hosts: Set<string>;
  private readonly origins: Set<string>;
  private readonly tokenDigest: Buffer | undefined;

  constructor(opts: GuardOptions = {}) {
    this.hosts = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()));
    this.origins = new Set((opts.allowedOrigins ?? []).map(normalizeOrigin));
    this.tokenDigest = opts.token === undefined ? undefined : digest(opts.token);
  }

  /** True when a bearer token is required. */
  get requiresToken(): boolean {
    return this.tokenDigest !== undefined;
  }

  /** The refusal for `req`, or undefined when it may proceed to its handler. */
  check(req: GuardRequest, route: GuardRoute = {}): Refusal | undefined {
    const host = header(req.headers.host);
    if (!host || !this.hostAllowed(host)) {
      return { status: 403, message: `Host ${JSON.stringify(host ?? "")} is not allowed (see --allowed-host).` };
    }
    const origin = header(req.headers.origin);
    const site = header(req.headers["sec-fetch-site"]);
    if (origin !== undefined && !this.originAllowed(origin, host)) {
      return { status: 403, message: `Origin ${JSON.stringify(origin)} is not allowed (see --allowed-origin).` };
    }
    if (origin === undefined && site !== undefined && !FIRST_PARTY_FETCH_SITES.has(site)) {
      return { status: 403, message: "Cross-site requests are not allowed (see --allowed-origin)." };
    }
    if (!route.public && !isPreflight(req) && !this.authorized(req.headers.authorization)) {
      return { status: 401, message: "Authorization: Bearer <token> is required (the token in --http-token-file)." };
    }
    const fromBrowser = origin !== undefined || site !== undefined;
    if (fromBrowser && !SAFE_METHODS.has(req.method ?? "")) return contentTypeRefusal(req.headers, route);
    return undefined;
  }

  /**
   * CORS response headers for a request from an allowed cross-origin page,
   * so the browser lets that page read the answer; none otherwise.
   */
  corsHeaders(req: GuardRequest): Record<string, string> {
    const origin = header(req.headers.origin);
    if (origin === undefined || !this.origins.has(normalizeOrigin(origin))) return {};
    const cors: Record<string, string> = {
      "Access-Control-Allow-Origin": origin,
      "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
      "Access-Control-Max-Age": String(PREFLIGHT_MAX_AGE_SECONDS),
      Vary: "Origin",
    };
    const requested = header(req.headers["access-control-request-headers"]);
    if (requested) cors["Access-Control-Allow-Headers"] = requested;
    return cors;
  }

  private hostAllowed(host: string): boolean {
    const lower = host.toLowerCase();
    const name = hostName(lower);
    return isLoopbackName(name) || this.hosts.has(name) || this.hosts.has(lower);
  }

  private originAllowed(origin: string, host: string): boolean {
    const normal = normalizeOrigin(origin);
    return this.origins.has(normal) || normal === normalizeOrigin(`http://${host}`);
  }

  private authorized(authorization: string | undefined): boolean {
    if (!this.tokenDigest) return true;
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
    return match !== null && timingSafeEqual(digest(match[1]!), this.tokenDigest);
  }
}

/** True for `localhost`, 127.0.0.0/8 and ::1 (the name without its port). */
export function isLoopbackName(name: string): boolean {
  const bare = name.startsWith("[") && name.endsWith("]") ? name.slice(1, -1) : name;
  if (bare === "localhost") return true;
  if (net.isIPv4(bare)) return bare.startsWith("127.");
  return net.isIPv6(bare) && normalizeV6(bare) === "::1";
}

/** The host name of a `Host` header value: `[::1]:80` → `[::1]`, `a.b:1` → `a.b`. */
function hostName(host: string): string {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}

function normalizeV6(addr: string): string {
  try {
    return new URL(`http://[${addr}]`).hostname.slice(1, -1);
  } catch {
    return addr;
  }
}

/** `scheme://host[:port]` as the URL parser writes it (lower case, default port dropped); the raw text if unparsable. */
function normalizeOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return url.origin === "null" ? origin : url.origin;
  } catch {
    return origin;
  }
}

function contentTypeRefusal(headers: IncomingHttpHeaders, route: GuardRoute): Refusal | undefined {
  const type = mediaType(headers["content-type"]);
  if (type !== undefined && !SIMPLE_CONTENT_TYPES.has(type)) return undefined;
  const wanted = route.rawBody ? RAW_BODY_CONTENT_TYPE : "application/json (or a Connect content type)";
  return { status: 415, message: `Content-Type ${JSON.stringify(type ?? "")} is not accepted here; use ${wanted}.` };
}

/** The media type of a Content-Type header, lower case, without parameters. */
function mediaType(value: string | undefined): string | undefined {
  const type = value?.split(";")[0]?.trim().toLowerCase();
  return type ? type : undefined;
}

/** True for a CORS preflight: it never carries credentials, so the token check skips it. */
export function isPreflight(req: GuardRequest): boolean {
  return req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
