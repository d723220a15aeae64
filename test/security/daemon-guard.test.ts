import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { encodeLogsFrame } from "../../src/boundary/codec.js";
import { IDLE_EVICTION_MS } from "../../src/connection-slots.js";
import { MAX_CONNECTIONS } from "../../src/boundary/socket-server.js";
import { logsRequest, scrape } from "../boundary/harness.js";
import { runAgentd, startAgentd, type RunningAgentd } from "../helpers/agentd.js";
import { rawExchange, rawRequest, statusOf, upgradeRequest } from "../http/raw-http.js";
import { ProcessApi } from "../process/api-client.js";

describe("the attacks from the issue, against bin/agentd serve with its defaults", () => {
  let agentd: RunningAgentd;
  before(async () => (agentd = await startAgentd()));
  after(async () => {
    await agentd.stop();
    fs.rmSync(agentd.dir, { recursive: true, force: true });
  });

  const evil = { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors" };

  it("no web page can start a process: simple cross-origin requests and a rebinding Host are refused", async () => {
    const body = JSON.stringify({ command: "touch /tmp/should-not-exist" });
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const r = await rawRequest(agentd.port, "POST", "/api/v0/processes/start", { ...evil, "Content-Type": type }, body);
      assert.equal(r.status, 403, type);
    }
    const rebind = await rawRequest(agentd.port, "POST", "/api/v0/processes/start", { Host: `evil.example:${agentd.port}`, "Content-Type": "application/json" }, body);
    assert.equal(rebind.status, 403);
    for (const path of ["/api/v0/processes/list", "/metrics", "/api/v0/git/paths"]) {
      assert.equal((await rawRequest(agentd.port, "GET", path, { Host: "evil.example" })).status, 403, path);
    }
    const connect = await rawRequest(agentd.port, "POST", "/agentd.process.v1.ProcessService/Start", { Origin: "https://evil.example", "Content-Type": "application/json" }, JSON.stringify({ command: "true" }));
    assert.equal(connect.status, 403);
    const list = await new ProcessApi(agentd).list();
    assert.deepEqual(list.json.processes, [], "nothing was started");
    assert.ok((await scrape(agentd.url, 'agentd_http_requests_refused_total{status="403"}')) >= 7);
  });

  it("the git watch WebSocket refuses another site's page and a rebinding Host", async () => {
    const path = `/api/v0/git/watch?chat_id=${randomUUID()}`;
    const origin = await rawExchange(agentd.port, upgradeRequest(path, { Host: `127.0.0.1:${agentd.port}`, Origin: "https://evil.example" }));
    assert.equal(statusOf(origin), 403);
    const host = await rawExchange(agentd.port, upgradeRequest(path, { Host: "evil.example" }));
    assert.equal(statusOf(host), 403);
    const coderd = await rawExchange(agentd.port, upgradeRequest(path, { Host: `127.0.0.1:${agentd.port}` }));
    assert.equal(statusOf(coderd), 101);
  });

  it("coderd-shaped clients keep working: no Origin, no Content-Type", async () => {
    const r = await rawRequest(agentd.port, "POST", "/api/v0/processes/start", {}, `{"command":"echo ok"}\n`);
    assert.equal(r.status, 200, r.body);
  });

  it("serve --help lists the guard's flags with their env vars", async () => {
    const { code, stdout } = await runAgentd(["serve", "--help"]);
    assert.equal(code, 0);
    const text = stdout.replace(/\s+/g, " ");
    for (const s of ["--allowed-host", "AGENTD_ALLOWED_HOSTS", "--allowed-origin", "AGENTD_ALLOWED_ORIGINS", "--http-token-file", "AGENTD_HTTP_TOKEN_FILE"]) {
      assert.ok(text.includes(s), s);
    }
  });

  it("rejects a malformed --allowed-origin or --allowed-host with one line naming the flag", async () => {
    for (const [flag, value] of [
      ["--allowed-origin", "https://app.example.com/path"],
      ["--allowed-origin", "app.example.com"],
      ["--allowed-host", "http://app.example.com"],
    ] as const) {
      const r = await runAgentd(["serve", flag, value, "--data-dir", `${agentd.dir}/other`]);
      assert.equal(r.code, 2, `${flag} ${value}`);
      assert.match(r.stderr, new RegExp(`^agentd: ${flag}: "${value.replace(/[./]/g, "\\$&")}" is not`));
    }
  });

  it("takes --allowed-host and --allowed-origin from comma-separated env vars", async () => {
    const other = await startAgentd({
      env: { AGENTD_ALLOWED_HOSTS: "ws.example.com, other.example.com", AGENTD_ALLOWED_ORIGINS: "https://app.example.com" },
    });
    try {
      assert.equal((await rawRequest(other.port, "GET", "/api/v0/processes/list", { Host: "other.example.com" })).status, 200);
      const r = await rawRequest(other.port, "GET", "/api/v0/processes/list", { Origin: "https://app.example.com" });
      assert.equal(r.status, 200);
      assert.equal(r.headers["access-control-allow-origin"], "https://app.example.com");
    } finally {
      await other.stop();
      fs.rmSync(other.dir, { recursive: true, force: true });
    }
  });
});

describe("idle boundary connections against the daemon (waits out the real 60 s threshold)", () => {
  it("1,100 idle connections held open, then a new client still delivers its logs", { timeout: IDLE_EVICTION_MS + 120_000 }, async () => {
    const agentd = await startAgentd();
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 1_100; i++) {
        held.push(
          await new Promise<net.Socket>((resolve) => {
            const s = net.connect(agentd.boundarySocket);
            s.on("error", () => {});
            s.once("connect", () => resolve(s));
            s.once("close", () => resolve(s));
          }),
        );
      }
      // A client's connect completes in the kernel's backlog; the daemon
      // accepts (and counts) it a moment later.
      const settled = Date.now() + 30_000;
      while ((await scrape(agentd.url, "agentd_boundary_connections_refused_total")) < 1_100 - MAX_CONNECTIONS) {
        assert.ok(Date.now() < settled, "the connections past the cap were never refused");
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(await scrape(agentd.url, "agentd_boundary_connections"), MAX_CONNECTIONS);
      await new Promise((r) => setTimeout(r, IDLE_EVICTION_MS + 1_000));
      const client = net.connect(agentd.boundarySocket);
      held.push(client);
      await new Promise<void>((resolve, reject) => client.once("connect", resolve).once("error", reject));
      client.write(encodeLogsFrame(logsRequest("after-idle")));
      const deadline = Date.now() + 30_000;
      while ((await scrape(agentd.url, "agent_boundary_log_proxy_batches_forwarded_total")) < 1) {
        assert.ok(Date.now() < deadline, "the new client's batch was never forwarded");
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(await scrape(agentd.url, "agentd_boundary_connections_evicted_total"), 1);
    } finally {
      held.forEach((s) => s.destroy());
      await agentd.stop();
      fs.rmSync(agentd.dir, { recursive: true, force: true });
    }
  });
});
