import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Registry } from "prom-client";
import { WebSocketServer } from "ws";
import { FilesService } from "../../gen/agentd/files/v1/files_pb.js";
import { GitWatchService } from "../../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import { ProcessService } from "../../gen/agentd/process/v1/process_pb.js";
import { Files } from "../../src/files/files.js";
import { FilesMetrics } from "../../src/files/metrics.js";
import { registerFilesRoutes } from "../../src/files/routes.js";
import { RequestGuard } from "../../src/http/guard.js";
import { HttpServer } from "../../src/http/server.js";
import { lazily } from "../../src/lazy.js";
import { createLogger } from "../../src/log.js";
import { startAgentd, tempDir } from "../helpers/agentd.js";
import { initRepo, repoIn, waitUntil, WatchClient, write } from "../gitwatch/helpers.js";
import { rawExchange, statusOf, upgradeRequest } from "./raw-http.js";

const TOKEN = "lazy-load-test-token-0123456789";

describe("lazily", () => {
  it("loads once for every caller, also for callers that come while the load runs", async () => {
    let loads = 0;
    const value = lazily(async () => ({ n: ++loads }));
    const [a, b] = await Promise.all([value(), value()]);
    assert.equal(a, b);
    assert.equal(await value(), a);
    assert.equal(loads, 1);
  });

  it("forgets a failed load: its callers see the error, the next call loads again", async () => {
    let loads = 0;
    const value = lazily(async () => {
      loads++;
      if (loads === 1) throw new Error("module failed to load");
      return "loaded";
    });
    const failed = await Promise.allSettled([value(), value()]);
    assert.deepEqual(
      failed.map((r) => r.status),
      ["rejected", "rejected"],
    );
    assert.equal(await value(), "loaded");
    assert.equal(await value(), "loaded");
    assert.equal(loads, 2);
  });
});

/** The files routes on their own server, backed by a Files whose load fails `failures` times first. */
async function filesServer(failures: number): Promise<{ port: number; loads: () => number; registry: Registry; close(): Promise<void> }> {
  const log = createLogger("silent");
  const registry = new Registry();
  const http = new HttpServer({ host: "127.0.0.1", port: 0 }, log, registry, new RequestGuard({ token: TOKEN }));
  const metrics = new FilesMetrics(registry);
  let loads = 0;
  const files = lazily(async () => {
    loads++;
    if (loads <= failures) throw new Error("files module failed to load");
    return new Files({ log, metrics, maxWriteBytes: 1 << 20, onPathsChanged: () => {} });
  });
  registerFilesRoutes(http, files, metrics, log);
  await http.listen();
  return { port: http.address().port, loads: () => loads, registry, close: () => http.close() };
}

describe("routes whose code loads with the first request", () => {
  it("are guarded before anything loads: no token is 401, and write-file's raw body type is known", async () => {
    const server = await filesServer(0);
    const dir = tempDir("agentd-lazy-");
    try {
      const url = `http://127.0.0.1:${server.port}/api/v0/write-file?path=${encodeURIComponent(path.join(dir, "a.txt"))}`;
      const refused = await fetch(url, { method: "POST", body: "x", headers: { "Content-Type": "application/octet-stream" } });
      assert.equal(refused.status, 401);
      await refused.arrayBuffer();
      assert.equal(server.loads(), 0, "a refused request loads nothing");
      const written = await fetch(url, {
        method: "POST",
        body: "written\n",
        headers: { "Content-Type": "application/octet-stream", Authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(written.status, 200, await written.text());
      assert.equal(fs.readFileSync(path.join(dir, "a.txt"), "utf8"), "written\n");
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("answer 500 while their code fails to load, and load it again for the next request", async () => {
    const server = await filesServer(1);
    const dir = tempDir("agentd-lazy-");
    try {
      fs.writeFileSync(path.join(dir, "b.txt"), "hello\n");
      const read = () =>
        fetch(`http://127.0.0.1:${server.port}/api/v0/read-file?path=${encodeURIComponent(path.join(dir, "b.txt"))}`, {
          headers: { Authorization: `Bearer ${TOKEN}` },
        });
      const failed = await read();
      assert.equal(failed.status, 500);
      const body = (await failed.json()) as { message: string; detail: string };
      assert.equal(body.message, "Internal error.");
      assert.match(body.detail, /files module failed to load/);
      const ok = await read();
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), "hello\n");
      assert.equal(server.loads(), 2);
      // Counted when the answer is finished, which the client may see first.
      const counted = /^agentd_files_requests_total\{route="read-file",code="500"\} 1\n.*code="200"\} 1$/m;
      await waitUntil(async () => counted.test(await server.registry.metrics()));
    } finally {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("upgrade handlers that load their code first", () => {
  it("answer 500 on the socket when the load fails, and upgrade the next request", async () => {
    const http = new HttpServer({ host: "127.0.0.1", port: 0 }, createLogger("silent"), new Registry(), new RequestGuard({}));
    const wss = new WebSocketServer({ noServer: true });
    let loads = 0;
    const loaded = lazily(async () => {
      loads++;
      if (loads === 1) throw new Error("watch module failed to load");
      return wss;
    });
    http.upgrade("/api/v0/ws", async (req, socket, head) => {
      (await loaded()).handleUpgrade(req, socket, head, (ws) => ws.close());
    });
    await http.listen();
    try {
      const { port } = http.address();
      const failed = await rawExchange(port, upgradeRequest("/api/v0/ws", { Host: `127.0.0.1:${port}` }));
      assert.equal(statusOf(failed), 500);
      const body = JSON.parse(failed.slice(failed.indexOf("\r\n\r\n") + 4)) as { message: string; detail: string };
      assert.deepEqual(body, { message: "Internal error.", detail: "watch module failed to load" });
      const upgraded = await rawExchange(port, upgradeRequest("/api/v0/ws", { Host: `127.0.0.1:${port}` }));
      assert.equal(statusOf(upgraded), 101);
      assert.equal(loads, 2);
    } finally {
      wss.close();
      await http.close();
    }
  });
});

describe("a fresh agentd loads each part with its first request", () => {
  it("serves the first files, process and git watch requests over REST and the WebSocket, all at once", async () => {
    const dir = tempDir("agentd-lazy-");
    const agentd = await startAgentd({ args: ["--git-watch-poll-interval", "3600"] });
    try {
      const root = initRepo(path.join(dir, "repo"));
      const file = write(root, "notes.txt", "one\ntwo");
      const chat = randomUUID();
      const [lines, started, client] = await Promise.all([
        fetch(`${agentd.url}/api/v0/read-file-lines?path=${encodeURIComponent(file)}`).then((r) => r.json()),
        fetch(`${agentd.url}/api/v0/processes/start`, {
          method: "POST",
          body: JSON.stringify({ command: "echo first", background: false }),
        }).then((r) => r.json() as Promise<{ id: string }>),
        WatchClient.connect(agentd.url, `?chat_id=${chat}`),
      ]);
      assert.equal((lines as { content: string }).content, "1\tone\n2\ttwo");
      const output = (await (await fetch(`${agentd.url}/api/v0/processes/${started.id}/output?wait=true`)).json()) as {
        output: string;
      };
      assert.equal(output.output, "first\n");
      const added = await fetch(`${agentd.url}/api/v0/git/paths`, {
        method: "POST",
        headers: { "Coder-Chat-Id": chat },
        body: JSON.stringify({ paths: [file] }),
      });
      assert.equal(added.status, 200);
      await client.next((m) => repoIn(m, root) !== undefined);
      client.close();
    } finally {
      assert.equal(await agentd.stop(), 0);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves the first files, process and git watch calls over Connect", async () => {
    const dir = tempDir("agentd-lazy-");
    const agentd = await startAgentd({ args: ["--git-watch-poll-interval", "3600"] });
    try {
      const transport = createConnectTransport({ baseUrl: agentd.url, httpVersion: "1.1" });
      const root = initRepo(path.join(dir, "repo"));
      const file = write(root, "notes.txt", "one");
      const chat = randomUUID();
      const [lines, started] = await Promise.all([
        createClient(FilesService, transport).readFileLines({ path: file }),
        createClient(ProcessService, transport).start({ command: "echo first" }),
      ]);
      assert.equal(lines.content, "1\tone");
      const output = await createClient(ProcessService, transport).output({ id: started.id, wait: true });
      assert.equal(output.output, "first\n");
      const gitwatch = createClient(GitWatchService, transport);
      await gitwatch.addPaths({ chatId: chat, paths: [file] });
      const abort = new AbortController();
      for await (const msg of gitwatch.watch({ chatId: chat }, { signal: abort.signal })) {
        if (msg.repositories.some((r) => r.repoRoot === root)) break;
      }
      abort.abort();
    } finally {
      assert.equal(await agentd.stop(), 0);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
