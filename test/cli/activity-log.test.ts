import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, describe, it } from "node:test";
import { AGENTD_BIN, privateSocketEnv, runAgentd, startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";

/** Waits for a log line this long: generous, so a busy machine is slow, not failing. */
const LOG_WAIT_MS = 60_000;

const daemons: RunningAgentd[] = [];
after(() => Promise.all(daemons.map((d) => d.stop())));

/** agentd at its default log level, info, so the test sees what an operator sees. */
async function daemon(): Promise<RunningAgentd> {
  const d = await startAgentd({ env: { AGENTD_LOG_LEVEL: "info" } });
  daemons.push(d);
  return d;
}

async function startProcess(agentd: RunningAgentd, body: object): Promise<Response> {
  return fetch(`${agentd.url}/api/v0/processes/start`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("activity at info level", () => {
  it("logs one start-up line with the URL, sockets, data dir, upstream and version", async () => {
    const agentd = await daemon();
    const line = agentd.logs.find((l) => l.msg === "agentd started")!;
    assert.equal(line.url, agentd.url);
    assert.equal(line.agentSocket, agentd.agentSocket);
    assert.equal(line.boundarySocket, agentd.boundarySocket);
    assert.equal(line.dataDir, agentd.dataDir);
    assert.equal(line.upstream, "embedded");
    assert.match(String(line.version), /^\d+\.\d+\.\d+/);
  });

  it("logs a process's start and exit with its id, command head, exit code and duration", async () => {
    const agentd = await daemon();
    const res = await startProcess(agentd, { command: "echo hi; exit 3" });
    const { id } = (await res.json()) as { id: string };
    const started = await agentd.waitForLog((l) => l.msg === "process started" && l.id === id, LOG_WAIT_MS);
    assert.equal(started.level, 30);
    assert.equal(started.command, "echo hi; exit 3");
    const exited = await agentd.waitForLog((l) => l.msg === "process exited" && l.id === id, LOG_WAIT_MS);
    assert.equal(exited.exitCode, 3);
    assert.equal(typeof exited.durationMs, "number");
  });

  it("logs a spawn failure", async () => {
    const agentd = await daemon();
    const res = await startProcess(agentd, { command: "true", workdir: "/no/such/dir" });
    assert.equal(res.status, 500);
    const line = await agentd.waitForLog((l) => l.msg === "process failed to start", LOG_WAIT_MS);
    assert.match(String(line.err), /no\/such\/dir/);
  });

  it("logs sync unit changes and forwarded app statuses", async () => {
    const agentd = await daemon();
    const sock = ["--socket-path", agentd.agentSocket];
    assert.equal((await runAgentd(["sync", "want", "web", "db", ...sock])).code, 0);
    assert.equal((await runAgentd(["sync", "start", "db", ...sock])).code, 0);
    assert.equal((await runAgentd(["sync", "complete", "db", ...sock])).code, 0);
    await runAgentd(["app-status", "--slug", "web", "--state", "working", "--message", "m", ...sock]);
    await agentd.waitForLog((l) => l.msg === "unit dependency added" && l.unit === "web" && l.dependsOn === "db", LOG_WAIT_MS);
    await agentd.waitForLog((l) => l.msg === "unit started" && l.unit === "db", LOG_WAIT_MS);
    await agentd.waitForLog((l) => l.msg === "unit completed" && l.unit === "db", LOG_WAIT_MS);
    const status = await agentd.waitForLog((l) => l.msg === "app status forwarded", LOG_WAIT_MS);
    assert.deepEqual({ slug: status.slug, state: status.state }, { slug: "web", state: "WORKING" });
  });
});

describe("--log-format", () => {
  it("pretty prints one readable line per event", async () => {
    const dir = tempDir();
    const proc = spawn(
      process.execPath,
      [AGENTD_BIN, "serve", "--http-addr", "127.0.0.1:0", "--data-dir", path.join(dir, "data"), "--log-format", "pretty"],
      { env: { ...process.env, ...privateSocketEnv(), AGENTD_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    try {
      await new Promise<void>((resolve, reject) => {
        proc.stdout.setEncoding("utf8").on("data", (c: string) => {
          out += c;
          if (out.includes("agentd started")) resolve();
        });
        proc.once("exit", () => reject(new Error(`agentd exited: ${out}`)));
      });
    } finally {
      proc.kill("SIGTERM");
      await new Promise((resolve) => proc.once("exit", resolve));
    }
    const started = out.split("\n").find((l) => l.includes("agentd started"))!;
    assert.match(started, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: agentd started \{"url":"http:\/\/127\.0\.0\.1:\d+"/);
    assert.match(out, /INFO: http: http server listening/, "the component leads the message");
    assert.doesNotMatch(out, /^\{"level"/m, "no JSON lines");
  });

  it("rejects an unknown format naming the flag", async () => {
    const res = await runAgentd(["serve", "--log-format", "xml"]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--log-format <format>' argument 'xml' is invalid/);
  });
});
