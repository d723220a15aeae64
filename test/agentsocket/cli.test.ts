import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { UpdateAppStatusRequest_AppStatusState } from "../../gen/coder/agent/v2/agent_pb.js";
import { AgentSocket } from "../../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { EmbeddedStore } from "../../src/coderd/embedded-store.js";
import { AGENTD_BIN, runAgentd, startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";

/** Resolves once `pred` holds, polling; fails after `timeoutMs`. */
async function eventually(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

describe("agent socket CLI against a running agentd", () => {
  let agentd: RunningAgentd;
  let sock: string[];
  const run = (...args: string[]) => runAgentd([...args, ...sock], { timeoutMs: 30_000 });

  before(async () => {
    agentd = await startAgentd();
    sock = ["--socket-path", agentd.agentSocket];
  });
  after(async () => {
    await agentd.stop();
    fs.rmSync(agentd.dir, { recursive: true, force: true });
  });

  test("the socket's directory is 0700 and the socket itself 0600", () => {
    assert.equal(fs.statSync(path.dirname(agentd.agentSocket)).mode & 0o777, 0o700);
    const st = fs.statSync(agentd.agentSocket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  test("the AgentSocket service is also served over Connect on HTTP, sharing the unit graph", async () => {
    const client = createClient(AgentSocket, createConnectTransport({ baseUrl: agentd.url, httpVersion: "1.1" }));
    await client.syncStart({ unit: "over-http" });
    const list = JSON.parse((await run("sync", "list", "-o", "json")).stdout);
    assert.deepEqual(list.find((u: { unit: string }) => u.unit === "over-http"), { unit: "over-http", status: "started", is_ready: true });
    const ready = await fetch(`${agentd.url}/readyz`);
    assert.equal(ready.status, 200);
  });

  test("sync ping answers in human and JSON form", async () => {
    assert.deepEqual(await run("sync", "ping"), { code: 0, stdout: "Success\n", stderr: "" });
    const json = await run("sync", "ping", "--output", "json");
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), { ok: true });
  });

  test("sync want / status / list report units in human and JSON form", async () => {
    assert.equal((await run("sync", "want", "web", "db")).stdout, "Unit 'web' now depends on 'db'\n");
    const status = await run("sync", "status", "web", "-o", "json");
    assert.equal(status.code, 0);
    assert.deepEqual(JSON.parse(status.stdout), {
      unit_name: "web",
      status: "pending",
      is_ready: false,
      dependencies: [{ depends_on: "db", required_status: "completed", current_status: "", is_satisfied: false }],
    });
    const human = await run("sync", "status", "web");
    assert.match(human.stdout, /^UNIT\s+STATUS\s+READY\nweb\s+pending\s+false\n/);
    assert.match(human.stdout, /DEPENDS ON\s+REQUIRED STATUS\s+CURRENT STATUS\s+SATISFIED\ndb\s+completed\s+\(not registered\)\s+false\n/);
    const list = await run("sync", "list", "-o", "json");
    assert.deepEqual(
      JSON.parse(list.stdout).find((u: { unit: string }) => u.unit === "web"),
      { unit: "web", status: "pending", is_ready: false },
    );
    assert.deepEqual((await run("sync", "ready", "web", "-o", "json")).stdout, '{\n  "unit": "web",\n  "ready": false\n}\n');
  });

  test("sync start waits until another process completes the dependency", async () => {
    assert.equal((await run("sync", "want", "app", "migrate")).code, 0);
    const waiter = spawn(process.execPath, [AGENTD_BIN, "sync", "start", "app", ...sock], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    waiter.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => waiter.once("exit", resolve));
    await eventually(() => out.includes("Waiting for dependencies of unit 'app' to be satisfied..."), "the waiter to wait");
    assert.equal((await run("sync", "start", "migrate")).code, 0);
    assert.equal((await run("sync", "complete", "migrate")).stdout, "Unit 'migrate' completed\n");
    assert.equal(await exited, 0);
    assert.match(out, /Unit 'app' started successfully\n$/);
    const status = JSON.parse((await run("sync", "status", "app", "-o", "json")).stdout);
    assert.equal(status.status, "started");
  });

  test("sync start gives up after --timeout with a clear error and exit 1", async () => {
    await run("sync", "want", "stuck", "forever");
    const res = await run("sync", "start", "stuck", "--timeout", "300ms");
    assert.equal(res.code, 1);
    assert.deepEqual(lines(res.stderr), ["agentd: timeout waiting for dependencies of unit 'stuck'"]);
  });

  test("sync wait returns once the dependency completes, without starting the unit", async () => {
    await run("sync", "want", "reader", "writer");
    const timedOut = await run("sync", "wait", "reader", "--timeout", "200ms");
    assert.deepEqual(lines(timedOut.stderr), ["agentd: timeout waiting for dependencies of unit 'reader'"]);
    await run("sync", "start", "writer");
    await run("sync", "complete", "writer");
    const res = await run("sync", "wait", "reader");
    assert.deepEqual(res, { code: 0, stdout: "Dependencies for unit 'reader' are now satisfied\n", stderr: "" });
    assert.equal(JSON.parse((await run("sync", "status", "reader", "-o", "json")).stdout).status, "pending");
  });

  test("unit errors come back with Coder's text and exit 1", async () => {
    await run("sync", "want", "x1", "x2");
    const cycle = await run("sync", "want", "x2", "x1");
    assert.deepEqual(
      { code: cycle.code, err: lines(cycle.stderr) },
      {
        code: 1,
        err: ['agentd: cannot add dependency: adding edge for unit "x2": failed to add dependency', "adding edge (x2 -> x1) would create a cycle"],
      },
    );
    const missing = await run("sync", "complete", "nobody");
    assert.deepEqual(lines(missing.stderr), ['agentd: cannot complete unit "nobody": unit "nobody" must be registered first: unit not found']);
  });

  test("usage mistakes exit 2: a bad --timeout, a missing argument", async () => {
    const bad = await run("sync", "start", "u", "--timeout", "soon");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--timeout: "soon" is not a duration/);
    assert.equal((await run("sync", "want", "only-one")).code, 2);
  });

  test("every command has --help", async () => {
    for (const args of [["sync"], ["sync", "start"], ["app-status"], ["subagent"], ["subagent", "create"], ["mcp"]]) {
      const res = await runAgentd([...args, "--help"]);
      assert.equal(res.code, 0, args.join(" "));
      assert.match(res.stdout, /Usage: agentd/);
    }
  });

  test("app-status sends exactly the request to the upstream", async () => {
    const res = await run("app-status", "--slug", "code", "--state", "working", "--message", "Building", "--uri", "https://x.test/pr/1");
    assert.deepEqual(res, { code: 0, stdout: "Reported working for app 'code'\n", stderr: "" });
    const store = EmbeddedStore.inDataDir(agentd.dataDir, { readonly: true });
    try {
      const last = store.appStatuses().at(-1)!;
      assert.deepEqual(
        { slug: last.slug, state: last.state, message: last.message, uri: last.uri },
        { slug: "code", state: UpdateAppStatusRequest_AppStatusState.WORKING, message: "Building", uri: "https://x.test/pr/1" },
      );
    } finally {
      store.close();
    }
  });

  test("app-status rejects a message over 160 bytes before sending it, naming the limit and the size", async () => {
    const res = await run("app-status", "--slug", "code", "--state", "idle", "--message", "é".repeat(81));
    assert.equal(res.code, 2);
    assert.deepEqual(lines(res.stderr), ["agentd: --message: is 162 bytes long; coderd accepts at most 160 bytes (UTF-8)"]);
    assert.equal((await run("app-status", "--slug", "code", "--state", "idle", "--message", "a".repeat(160))).code, 0);
  });

  test("app-status with an unknown state is a usage error listing the valid states", async () => {
    const res = await run("app-status", "--slug", "code", "--state", "done", "--message", "m");
    assert.equal(res.code, 2);
    assert.match(res.stderr, /working, idle, complete, failure/);
  });

  test("coderd's validation errors pass through app-status", async () => {
    const res = await run("app-status", "--slug", "", "--state", "idle", "--message", "m");
    assert.deepEqual({ code: res.code, err: lines(res.stderr) }, { code: 1, err: ["agentd: Failed to get workspace app."] });
  });

  test("subagent create, list and delete through the socket", async () => {
    const created = await run("subagent", "create", "--name", "devcontainer", "--directory", "/work", "-o", "json");
    assert.equal(created.code, 0, created.stderr);
    const agent = JSON.parse(created.stdout);
    assert.equal(agent.name, "devcontainer");
    assert.match(agent.id, /^[0-9a-f-]{36}$/);
    assert.match(agent.auth_token, /^[0-9a-f-]{36}$/);
    const listed = JSON.parse((await run("subagent", "list", "-o", "json")).stdout);
    assert.deepEqual(listed.find((a: { id: string }) => a.id === agent.id), { id: agent.id, name: "devcontainer" });
    const human = await run("subagent", "list");
    assert.match(human.stdout, new RegExp(`^ID\\s+NAME\\n(.*\\n)*${agent.id}\\s+devcontainer\\n`));
    assert.ok(!human.stdout.includes(agent.auth_token), "list never prints the token");
    assert.equal((await run("subagent", "delete", agent.id)).stdout, `Deleted sub-agent ${agent.id}\n`);
    const after = JSON.parse((await run("subagent", "list", "-o", "json")).stdout);
    assert.equal(after.find((a: { id: string }) => a.id === agent.id), undefined);
  });

  test("subagent delete with an id that is not a UUID is a usage error", async () => {
    const res = await run("subagent", "delete", "not-a-uuid");
    assert.equal(res.code, 2);
    assert.match(res.stderr, /"not-a-uuid" is not a UUID/);
  });

  test("an unreachable socket is one clear line and exit 1", async () => {
    const res = await runAgentd(["sync", "ping", "--socket-path", path.join(agentd.dir, "missing.sock")]);
    assert.equal(res.code, 1);
    assert.equal(lines(res.stderr).length, 1);
    assert.match(res.stderr, /^agentd: cannot reach the agent socket at .*missing\.sock/);
  });

  test("a second agentd serve on the same socket exits 2 with one line naming --agent-socket", async () => {
    const other = tempDir();
    try {
      const res = await runAgentd([
        "serve",
        "--http-addr",
        "127.0.0.1:0",
        "--data-dir",
        path.join(other, "data"),
        "--boundary-socket",
        path.join(other, "boundary.sock"),
        "--agent-socket",
        agentd.agentSocket,
      ]);
      assert.equal(res.code, 2);
      assert.equal(lines(res.stderr).length, 1, res.stderr);
      assert.match(res.stderr, /^agentd: --agent-socket: socket path .* is not available/);
      assert.equal((await run("sync", "ping")).code, 0, "the first server keeps serving");
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});

describe("agent socket lifecycle", () => {
  test("a stale socket file left by a killed agentd is replaced; a clean stop removes the file", async () => {
    const first = await startAgentd();
    try {
      assert.equal(await first.stop("SIGKILL"), null);
      assert.ok(fs.existsSync(first.agentSocket), "SIGKILL leaves the socket file behind");
      const second = await startAgentd({ dir: first.dir });
      assert.equal((await runAgentd(["sync", "ping", "--socket-path", second.agentSocket])).code, 0);
      assert.equal(await second.stop(), 0);
      assert.equal(fs.existsSync(second.agentSocket), false);
    } finally {
      fs.rmSync(first.dir, { recursive: true, force: true });
    }
  });

  test("without a coderd connection app-status fails 'agent not connected to coderd'", async () => {
    const agentd = await startAgentd({ args: ["--coder-url", "http://127.0.0.1:9", "--token", "t"] });
    try {
      const res = await runAgentd(["app-status", "--slug", "s", "--state", "idle", "--message", "m", "--socket-path", agentd.agentSocket]);
      assert.deepEqual({ code: res.code, err: lines(res.stderr) }, { code: 1, err: ["agentd: agent not connected to coderd"] });
      const sub = await runAgentd(["subagent", "list", "--socket-path", agentd.agentSocket]);
      assert.deepEqual(lines(sub.stderr), ["agentd: agent not connected to coderd"]);
      assert.equal((await runAgentd(["sync", "ping", "--socket-path", agentd.agentSocket])).code, 0, "sync needs no coderd");
    } finally {
      await agentd.stop();
      fs.rmSync(agentd.dir, { recursive: true, force: true });
    }
  });
});

describe("sync start against an agent socket that never answers", () => {
  test("--timeout also bounds the calls themselves: the wait ends with the timeout error", async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, "wedged.sock");
    const held: net.Socket[] = [];
    const wedged = net.createServer((conn) => held.push(conn.on("error", () => {})));
    await new Promise<void>((resolve) => wedged.listen(socketPath, resolve));
    try {
      const res = await runAgentd(["sync", "start", "u", "--timeout", "1s", "--socket-path", socketPath], { timeoutMs: 25_000 });
      assert.deepEqual({ code: res.code, err: lines(res.stderr) }, { code: 1, err: ["agentd: timeout waiting for dependencies of unit 'u'"] });
    } finally {
      for (const c of held) c.destroy();
      await new Promise((resolve) => wedged.close(resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
