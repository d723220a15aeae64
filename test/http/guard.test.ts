import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import { WebSocketServer } from "ws";
import { ListResponseSchema, ProcessService } from "../../gen/agentd/process/v1/process_pb.js";
import { RequestGuard, type GuardOptions } from "../../src/http/guard.js";
import { writeJson } from "../../src/http/json.js";
import { HttpServer } from "../../src/http/server.js";
import { createLogger } from "../../src/log.js";
import { rawExchange, rawRequest, statusOf, upgradeRequest } from "./raw-http.js";

const TOKEN = "s3cret-token-for-tests-0123456789";
const ALLOWED_ORIGIN = "https://dash.example.com";

interface Served {
  port: number;
  /** Requests that reached a handler, as "METHOD path". */
  handled: string[];
  close(): Promise<void>;
}

/** An HttpServer with a JSON route, a raw-body route, a WebSocket and a Connect service, behind `guard`. */
async function serve(guard: GuardOptions = {}): Promise<Served> {
  const handled: string[] = [];
  const http = new HttpServer({ host: "127.0.0.1", port: 0 }, createLogger("silent"), new Registry(), new RequestGuard(guard));
  http.route("POST", "/api/v0/echo", (req, res) => {
    handled.push(`POST ${req.url}`);
    writeJson(res, 200, { ok: true });
  });
  http.route("GET", "/api/v0/list", (req, res) => {
    handled.push(`GET ${req.url}`);
    writeJson(res, 200, { ok: true });
  });
  http.route(
    "POST",
    "/api/v0/write-file",
    (req, res) => {
      handled.push(`POST ${req.url}`);
      req.resume();
      req.on("end", () => writeJson(res, 200, { message: "written" }));
    },
    { rawBody: true },
  );
  const wss = new WebSocketServer({ noServer: true });
  http.upgrade("/api/v0/ws", (req, socket, head) => {
    handled.push(`UPGRADE ${req.url}`);
    wss.handleUpgrade(req, socket, head, (ws) => ws.close());
  });
  http.connect((router) => router.service(ProcessService, { list: () => create(ListResponseSchema, {}) }));
  await http.listen();
  return {
    port: http.address().port,
    handled,
    async close() {
      wss.close();
      await http.close();
    },
  };
}

describe("Host check (DNS rebinding)", () => {
  let s: Served;
  before(async () => (s = await serve({ allowedHosts: ["workspace.example.com", "pinned.example.com:8080"] })));
  after(() => s.close());

  it("refuses a request whose Host is an attacker's name, before any handler runs", async () => {
    for (const [method, path] of [
      ["GET", "/api/v0/list"],
      ["GET", "/metrics"],
      ["GET", "/readyz"],
      ["GET", "/healthz"],
    ]) {
      const r = await rawRequest(s.port, method!, path!, { Host: `evil.example:${s.port}` });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.match(JSON.parse(r.body).message, /Host "evil.example:\d+" is not allowed/);
    }
    const post = await rawRequest(s.port, "POST", "/api/v0/echo", { Host: "evil.example", "Content-Type": "application/json" }, "{}");
    assert.equal(post.status, 403);
    assert.deepEqual(s.handled, []);
  });

  it("accepts loopback names and addresses with any port, and the allowed hosts", async () => {
    for (const host of ["localhost", `localhost:${s.port}`, "127.0.0.1", "127.1.2.3:80", "[::1]", `[::1]:${s.port}`, "LOCALHOST:1", "workspace.example.com", "workspace.example.com:443", "pinned.example.com:8080"]) {
      const r = await rawRequest(s.port, "GET", "/api/v0/list", { Host: host });
      assert.equal(r.status, 200, host);
    }
  });

  it("refuses look-alikes of loopback and an allowed host on another port", async () => {
    for (const host of ["localhost.evil.example", "127.0.0.1.nip.io", "0.0.0.0", "[::2]", "pinned.example.com:8081", "sub.localhost"]) {
      const r = await rawRequest(s.port, "GET", "/api/v0/list", { Host: host });
      assert.equal(r.status, 403, host);
    }
  });

  it("refuses a request with no Host header at all", async () => {
    const answer = await rawExchange(s.port, "GET /api/v0/list HTTP/1.0\r\n\r\n");
    assert.equal(statusOf(answer), 403);
  });
});

describe("Origin check and browser content types (cross-site requests)", () => {
  let s: Served;
  before(async () => (s = await serve({ allowedOrigins: [ALLOWED_ORIGIN] })));
  after(() => s.close());

  const evil = "https://evil.example";

  it("refuses the simple requests a page on another site can send without a preflight", async () => {
    const shapes: Record<string, string>[] = [
      { "Content-Type": "text/plain;charset=UTF-8" },
      { "Content-Type": "application/x-www-form-urlencoded" },
      { "Content-Type": "multipart/form-data; boundary=x" },
      {},
    ];
    for (const shape of shapes) {
      const r = await rawRequest(s.port, "POST", "/api/v0/echo", { ...shape, Origin: evil, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors" }, "{}");
      assert.equal(r.status, 403, JSON.stringify(shape));
      assert.match(JSON.parse(r.body).message, /Origin "https:\/\/evil.example" is not allowed/);
    }
    const json = await rawRequest(s.port, "POST", "/api/v0/echo", { "Content-Type": "application/json", Origin: evil }, "{}");
    assert.equal(json.status, 403);
    const nullOrigin = await rawRequest(s.port, "POST", "/api/v0/echo", { "Content-Type": "application/json", Origin: "null" }, "{}");
    assert.equal(nullOrigin.status, 403);
    assert.deepEqual(s.handled, []);
  });

  it("refuses a cross-site browser request that carries no Origin (a no-cors GET)", async () => {
    const r = await rawRequest(s.port, "GET", "/api/v0/list", { "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors" });
    assert.equal(r.status, 403);
    const sameSite = await rawRequest(s.port, "GET", "/api/v0/list", { "Sec-Fetch-Site": "same-site" });
    assert.equal(sameSite.status, 403);
  });

  it("serves agentd's own pages (same origin) and a typed-in URL", async () => {
    const self = `http://127.0.0.1:${s.port}`;
    const get = await rawRequest(s.port, "GET", "/api/v0/list", { Origin: self, "Sec-Fetch-Site": "same-origin" });
    assert.equal(get.status, 200);
    const typed = await rawRequest(s.port, "GET", "/api/v0/list", { "Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate" });
    assert.equal(typed.status, 200);
    const post = await rawRequest(s.port, "POST", "/api/v0/echo", { Origin: self, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json" }, "{}");
    assert.equal(post.status, 200);
  });

  it("answers 415 to a browser's state-changing request with a simple or missing content type, even from an allowed origin", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", undefined]) {
      const headers: Record<string, string> = { Origin: ALLOWED_ORIGIN, "Sec-Fetch-Site": "cross-site" };
      if (type) headers["Content-Type"] = type;
      const r = await rawRequest(s.port, "POST", "/api/v0/echo", headers, "{}");
      assert.equal(r.status, 415, String(type));
      assert.match(JSON.parse(r.body).message, /Content-Type .* is not accepted here; use application\/json/);
    }
    const sameOrigin = await rawRequest(s.port, "POST", "/api/v0/echo", { Origin: `http://localhost:${s.port}`, Host: `localhost:${s.port}`, "Content-Type": "text/plain" }, "{}");
    assert.equal(sameOrigin.status, 415);
  });

  it("lets an allowed origin call the API and read the answer (CORS), preflight included", async () => {
    const preflight = await rawRequest(s.port, "OPTIONS", "/api/v0/echo", {
      Origin: ALLOWED_ORIGIN,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type",
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers["access-control-allow-origin"], ALLOWED_ORIGIN);
    assert.equal(preflight.headers["access-control-allow-headers"], "content-type");
    const post = await rawRequest(s.port, "POST", "/api/v0/echo", { Origin: ALLOWED_ORIGIN, "Content-Type": "application/json" }, "{}");
    assert.equal(post.status, 200);
    assert.equal(post.headers["access-control-allow-origin"], ALLOWED_ORIGIN);
    const evilPreflight = await rawRequest(s.port, "OPTIONS", "/api/v0/echo", { Origin: evil, "Access-Control-Request-Method": "POST" });
    assert.equal(evilPreflight.status, 403);
    assert.equal(evilPreflight.headers["access-control-allow-origin"], undefined);
  });

  it("leaves clients that are not browsers alone: no Origin, any or no content type (coderd, the CLI, curl)", async () => {
    const shapes: Record<string, string>[] = [
      {},
      { "Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Mode": "cors" },
      { "Content-Type": "application/json" },
    ];
    for (const headers of shapes) {
      const r = await rawRequest(s.port, "POST", "/api/v0/echo", headers, "{}");
      assert.equal(r.status, 200, JSON.stringify(headers));
    }
  });

  it("takes write-file's raw body as application/octet-stream, or with no type from Coder's Go client", async () => {
    const self = `http://127.0.0.1:${s.port}`;
    const octet = await rawRequest(s.port, "POST", "/api/v0/write-file?path=/tmp/x", { Origin: self, "Content-Type": "application/octet-stream" }, "hello");
    assert.equal(octet.status, 200);
    const coder = await rawRequest(s.port, "POST", "/api/v0/write-file?path=/tmp/x", {}, "hello");
    assert.equal(coder.status, 200);
    const plain = await rawRequest(s.port, "POST", "/api/v0/write-file?path=/tmp/x", { Origin: self, "Content-Type": "text/plain" }, "hello");
    assert.equal(plain.status, 415);
    assert.match(JSON.parse(plain.body).message, /use application\/octet-stream/);
  });
});

describe("WebSocket upgrades pass the same guard", () => {
  let s: Served;
  before(async () => (s = await serve({ token: TOKEN })));
  after(() => s.close());

  const auth = { Authorization: `Bearer ${TOKEN}` };

  it("refuses an upgrade from another site's page with 403 on the raw socket", async () => {
    const answer = await rawExchange(s.port, upgradeRequest("/api/v0/ws", { Host: `127.0.0.1:${s.port}`, Origin: "https://evil.example", ...auth }));
    assert.equal(statusOf(answer), 403);
    assert.match(answer, /Origin \\"https:\/\/evil.example\\" is not allowed/);
  });

  it("refuses an upgrade with a rebinding Host, or without the token", async () => {
    const rebind = await rawExchange(s.port, upgradeRequest("/api/v0/ws", { Host: "evil.example", ...auth }));
    assert.equal(statusOf(rebind), 403);
    const noToken = await rawExchange(s.port, upgradeRequest("/api/v0/ws", { Host: `127.0.0.1:${s.port}` }));
    assert.equal(statusOf(noToken), 401);
    assert.deepEqual(s.handled, []);
  });

  it("upgrades a client with the token and no Origin (coderd)", async () => {
    const answer = await rawExchange(s.port, upgradeRequest("/api/v0/ws", { Host: `127.0.0.1:${s.port}`, ...auth }));
    assert.equal(statusOf(answer), 101);
  });
});

describe("bearer token", () => {
  let s: Served;
  before(async () => (s = await serve({ token: TOKEN })));
  after(() => s.close());

  it("answers 401 without the token or with a wrong one, and 200 with it", async () => {
    const none = await rawRequest(s.port, "GET", "/api/v0/list");
    assert.equal(none.status, 401);
    assert.equal(none.headers["www-authenticate"], 'Bearer realm="agentd"');
    for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, "Bearer", TOKEN, `Basic ${TOKEN}`]) {
      const r = await rawRequest(s.port, "GET", "/api/v0/list", { Authorization: authorization });
      assert.equal(r.status, 401, authorization);
    }
    for (const path of ["/metrics", "/readyz", "/no/such/path"]) {
      assert.equal((await rawRequest(s.port, "GET", path)).status, 401, path);
    }
    const ok = await rawRequest(s.port, "GET", "/api/v0/list", { Authorization: `Bearer ${TOKEN}` });
    assert.equal(ok.status, 200);
    assert.equal((await rawRequest(s.port, "GET", "/metrics", { Authorization: `bearer ${TOKEN}` })).status, 200);
  });

  it("serves /healthz without the token, but still checks its Host", async () => {
    assert.equal((await rawRequest(s.port, "GET", "/healthz")).status, 200);
    assert.equal((await rawRequest(s.port, "GET", "/healthz", { Host: "evil.example" })).status, 403);
  });

  it("guards Connect too", async () => {
    const path = "/agentd.process.v1.ProcessService/List";
    const none = await rawRequest(s.port, "POST", path, { "Content-Type": "application/json" }, "{}");
    assert.equal(none.status, 401);
    const ok = await rawRequest(s.port, "POST", path, { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` }, "{}");
    assert.equal(ok.status, 200);
  });
});

describe("Connect input bounds and errors", () => {
  let s: Served;
  before(async () => (s = await serve()));
  after(() => s.close());

  const path = "/agentd.process.v1.ProcessService/List";

  it("refuses Connect from another site's page", async () => {
    const r = await rawRequest(s.port, "POST", path, { "Content-Type": "application/json", Origin: "https://evil.example" }, "{}");
    assert.equal(r.status, 403);
  });

  it("answers malformed protobuf with invalid_argument (400), not internal", async () => {
    const r = await rawRequest(s.port, "POST", path, { "Content-Type": "application/proto" }, Buffer.from("garbage!"));
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).code, "invalid_argument");
    assert.match(JSON.parse(r.body).message, /^parse binary:/);
  });

  it("refuses a body over 1 MiB with resource_exhausted", async () => {
    const big = JSON.stringify({ pad: "x".repeat(2 << 20) });
    const r = await rawRequest(s.port, "POST", path, { "Content-Type": "application/json" }, big);
    assert.equal(JSON.parse(r.body).code, "resource_exhausted");
  });

  it("refuses a gzip body that inflates past 1 MiB (a 20 KiB bomb of 20 MiB)", async () => {
    const bomb = gzipSync(Buffer.concat([Buffer.from("{}"), Buffer.alloc(20 << 20, 0x20)]));
    assert.ok(bomb.length < 64 << 10);
    const r = await rawRequest(s.port, "POST", path, { "Content-Type": "application/json", "Content-Encoding": "gzip" }, bomb);
    const err = JSON.parse(r.body);
    assert.equal(err.code, "resource_exhausted");
    assert.match(err.message, /after decompression/);
    const fine = await rawRequest(s.port, "POST", path, { "Content-Type": "application/json", "Content-Encoding": "gzip" }, gzipSync("{}"));
    assert.equal(fine.status, 200);
  });
});
