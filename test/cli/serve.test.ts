import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, it } from "node:test";
import { runAgentd, startAgentd, tempDir } from "../helpers/agentd.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function scratch(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

function hasPromtool(): boolean {
  try {
    execFileSync("promtool", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("agentd serve start-up errors", () => {
  it("rejects a malformed --http-addr with one line naming the flag and exit 2", async () => {
    const { code, stderr } = await runAgentd(["serve", "--http-addr", "nonsense", "--data-dir", scratch()]);
    assert.equal(code, 2);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, /--http-addr/);
    assert.doesNotMatch(stderr, /\bat .*\.js:\d+/, "no stack trace");
  });

  it("reads flags from their env vars", async () => {
    const { code, stderr } = await runAgentd(["serve", "--data-dir", scratch()], {
      env: { AGENTD_HTTP_ADDR: "also-nonsense" },
    });
    assert.equal(code, 2);
    assert.match(stderr, /--http-addr: "also-nonsense"/);
  });

  it("rejects a port that is already in use", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const { code, stderr } = await runAgentd(["serve", "--http-addr", `127.0.0.1:${port}`, "--data-dir", scratch()]);
      assert.equal(code, 2);
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
      assert.match(stderr, /--http-addr: 127\.0\.0\.1:\d+ is already in use/);
    } finally {
      blocker.close();
    }
  });

  it("rejects a data dir that cannot be created", async () => {
    const file = path.join(scratch(), "a-file");
    fs.writeFileSync(file, "");
    const { code, stderr } = await runAgentd(["serve", "--http-addr", "127.0.0.1:0", "--data-dir", path.join(file, "x")]);
    assert.equal(code, 2);
    assert.match(stderr, /^agentd: --data-dir: .* is not a directory\n$/);
  });

  it("rejects a data dir without write permission", { skip: process.getuid?.() === 0 && "root can write anywhere" }, async () => {
    const dir = path.join(scratch(), "ro");
    fs.mkdirSync(dir, { mode: 0o500 });
    const { code, stderr } = await runAgentd(["serve", "--http-addr", "127.0.0.1:0", "--data-dir", dir]);
    assert.equal(code, 2);
    assert.match(stderr, /--data-dir: .* is not writable/);
  });

  it("lists every flag with its env var in --help", async () => {
    const { code, stdout } = await runAgentd(["serve", "--help"]);
    assert.equal(code, 0);
    for (const [flag, env] of [
      ["--http-addr", "AGENTD_HTTP_ADDR"],
      ["--boundary-socket", "CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH"],
      ["--agent-socket", "CODER_AGENT_SOCKET_PATH"],
      ["--data-dir", "AGENTD_DATA_DIR"],
      ["--coder-url", "CODER_AGENT_URL"],
      ["--token", "CODER_AGENT_TOKEN"],
      ["--token-file", "CODER_AGENT_TOKEN_FILE"],
      ["--workdir", "AGENTD_WORKDIR"],
      ["--log-level", "AGENTD_LOG_LEVEL"],
      ["--max-processes", "AGENTD_MAX_PROCESSES"],
      ["--boundary-spool-bytes", "AGENTD_BOUNDARY_SPOOL_BYTES"],
      ["--git-watch-poll-interval", "AGENTD_GIT_WATCH_POLL_INTERVAL"],
      ["--max-fs-watched-repos", "AGENTD_MAX_FS_WATCHED_REPOS"],
      ["--max-write-bytes", "AGENTD_MAX_WRITE_BYTES"],
    ] as const) {
      assert.ok(stdout.includes(flag), `help lists ${flag}`);
      assert.ok(stdout.replace(/\s+/g, " ").includes(env), `help names ${env}`);
    }
    assert.match(stdout.replace(/\s+/g, " "), /default: "127\.0\.0\.1:4141"/);
  });
});

describe("agentd serve endpoints and shutdown", () => {
  it("serves /healthz, /readyz and Prometheus /metrics, and exits 0 on SIGTERM leaving no sockets", async () => {
    const agentd = await startAgentd({ dir: scratch() });
    try {
      const health = await fetch(`${agentd.url}/healthz`);
      assert.equal(health.status, 200);
      const ready = await fetch(`${agentd.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal(((await ready.json()) as { ready: boolean }).ready, true);
      const metrics = await fetch(`${agentd.url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
      const text = await metrics.text();
      assert.match(text, /^# HELP process_cpu_user_seconds_total/m);
      // CI installs promtool (.ci/run); elsewhere the lint runs when it is there.
      if (process.env.CI) assert.ok(hasPromtool(), "promtool is installed in CI");
      if (hasPromtool()) execFileSync("promtool", ["check", "metrics"], { input: text });
      const notFound = await fetch(`${agentd.url}/no/such/path`);
      assert.equal(notFound.status, 404);
      assert.equal(await notFound.text(), "404 page not found\n");
    } finally {
      assert.equal(await agentd.stop("SIGTERM"), 0);
    }
    const left = fs.readdirSync(agentd.dir, { recursive: true }).map(String);
    assert.deepEqual(
      left.filter((f) => f.endsWith(".sock")),
      [],
      "no socket files left behind",
    );
  });

  it("exits 0 on SIGINT too", async () => {
    const agentd = await startAgentd({ dir: scratch() });
    assert.equal(await agentd.stop("SIGINT"), 0);
  });
});
