import fs from "node:fs";
import type { ServerResponse } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { HttpServer } from "../http/server.js";
import type { Logger } from "../log.js";

/** Where `make build` writes the dashboard (dist/web, next to dist/src). */
export const DEFAULT_ASSETS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../web");
/** URL prefix of the bundled assets. */
export const ASSETS_PATH = "/assets";

/** Content types of the files the build writes. */
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8",
};

/**
 * Only this origin's scripts, styles, images and Connect/WebSocket calls; no
 * inline code, no framing, no plugins.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers every dashboard response carries. */
const SECURITY_HEADERS = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
};

interface Asset {
  body: Buffer;
  type: string;
}

/**
 * Serves the dashboard: `index.html` at `/` and the bundle under `/assets/`,
 * read once from the build output. Public routes (no bearer token: they hold
 * no data); everything the page shows comes from the Connect services.
 */
export function registerDashboard(http: HttpServer, log: Logger, dir = DEFAULT_ASSETS_DIR): void {
  const assets = loadAssets(dir, log);
  const serve = (res: ServerResponse, name: string) => {
    const asset = assets.get(name);
    if (!asset) return notFound(res, assets.size === 0);
    res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": asset.type, "Content-Length": asset.body.length });
    res.end(asset.body);
  };
  http.route("GET", "/", (_req, res) => serve(res, "index.html"), { public: true });
  http.route("GET", `${ASSETS_PATH}/:name`, (_req, res, params) => serve(res, `assets/${params.name}`), { public: true });
}

function notFound(res: ServerResponse, unbuilt: boolean): void {
  res.writeHead(unbuilt ? 503 : 404, { ...SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8" });
  res.end(unbuilt ? "The dashboard is not built: run `make build`.\n" : "404 page not found\n");
}

/** index.html and every file directly under assets/, keyed by their path relative to `dir`. */
function loadAssets(dir: string, log: Logger): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const names = ["index.html", ...listDir(path.join(dir, "assets")).map((n) => `assets/${n}`)];
  for (const name of names) {
    const type = CONTENT_TYPES[path.extname(name)];
    if (!type) continue;
    try {
      assets.set(name, { body: fs.readFileSync(path.join(dir, name)), type });
    } catch {
      log.warn({ dir }, "dashboard is not built; `/` answers 503");
      return new Map();
    }
  }
  return assets;
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
