import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, it } from "node:test";
import { bearerHeader, readHttpTokenFile } from "../../src/http/token-file.js";
import { logsRequest } from "../boundary/harness.js";
import { encodeLogsFrame } from "../../src/boundary/codec.js";
import { runAgentd, startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";
import { ProcessApi } from "../process/api-client.js";
import { rawRequest } from "../http/raw-http.js";

const AGENT_TOKEN = "agent-token-0f1e2d3c4b5a69788796a5b4";
const HTTP_TOKEN = "http-token-a1b2c3d4e5f60718293a4b5c";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function scratch(): string {
  const dir = tempDir("agentd-security-");
  dirs.push(dir);
  return dir;
}

/** Writes a token file (0600) and returns its path. */
function tokenFile(dir: string, name: string, token: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

async function readyz(agentd: RunningAgentd, headers: Record<string, string> = {}): Promise<Record<string, boolean>> {
  const res = await fetch(`${agentd.url}/readyz`, { headers });
  return ((await res.json()) as { checks: Record<string, boolean> }).checks;
}

async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

describe("secrets stay out of children, the command line and the logs", () => {
  it("a process started through the API (pipe and pty) sees no token in its environment", async () => {
    const dir = scratch();
    const httpTokenFile = tokenFile(dir, "http-token", HTTP_TOKEN);
    const agentTokenFile = tokenFile(dir, "agent-token", AGENT_TOKEN);
    const agentd = await startAgentd({
      dir,
      env: {
        CODER_AGENT_TOKEN: AGENT_TOKEN,
        CODER_AGENT_TOKEN_FILE: agentTokenFile,
        AGENTD_HTTP_TOKEN_FILE: httpTokenFile,
        TOKEN_COPY: `prefix-${AGENT_TOKEN}`,
        HARMLESS_SETTING: "kept",
      },
    });
    try {
      const api = new ProcessApi(agentd, bearerHeader(readHttpTokenFile(httpTokenFile)));
      for (const pty of [false, true]) {
        const out = await api.run("env", { pty });
        assert.equal(out.exit_code, 0, out.output);
        assert.match(out.output, /HARMLESS_SETTING=kept/, `pty=${pty}`);
        for (const secret of [AGENT_TOKEN, HTTP_TOKEN, "CODER_AGENT_TOKEN", "AGENTD_HTTP_TOKEN_FILE", "TOKEN_COPY"]) {
          assert.ok(!out.output.includes(secret), `pty=${pty}: ${secret} leaked into the child environment`);
        }
      }
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  it("hides --token from /proc/PID/cmdline and recommends --token-file", async () => {
    // Started as installed, so the launcher's node flag is on the command line too.
    const agentd = await startAgentd({ dir: scratch(), args: ["--token", AGENT_TOKEN], asProgram: true });
    try {
      const cmdline = fs.readFileSync(`/proc/${agentd.proc.pid}/cmdline`, "utf8");
      assert.ok(!cmdline.includes(AGENT_TOKEN), cmdline);
      assert.match(cmdline, /--token \[redacted\]/);
      assert.match(cmdline, /--max-semi-space-size=1 \S*bin\/agentd serve/, "node's flags stay in view");
      const warning = await agentd.waitForLog((l) => l.level === 40 && /--token-file/.test(String(l.msg)));
      assert.match(String(warning.msg), /visible to other local users/);
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  it("never logs a token, even at --log-level trace", async () => {
    const dir = scratch();
    const agentd = await startAgentd({
      dir,
      args: ["--log-level", "trace", "--http-token-file", tokenFile(dir, "http-token", HTTP_TOKEN)],
      env: { CODER_AGENT_TOKEN: AGENT_TOKEN },
    });
    let output = "";
    try {
      const port = agentd.port;
      await rawRequest(port, "GET", "/api/v0/processes/list", { Authorization: `Bearer ${HTTP_TOKEN}` });
      await rawRequest(port, "GET", "/api/v0/processes/list", { Authorization: `Bearer ${HTTP_TOKEN}-wrong` });
      await rawRequest(port, "GET", "/metrics", { Authorization: `Bearer ${AGENT_TOKEN}`, Host: "evil.example" });
      const api = new ProcessApi(agentd, bearerHeader(HTTP_TOKEN));
      await api.run(`echo started`);
    } finally {
      assert.equal(await agentd.stop(), 0);
      output = agentd.logs.map((l) => JSON.stringify(l)).join("\n") + agentd.stderr();
    }
    assert.ok(agentd.logs.some((l) => l.level === 10 || l.level === 20), "trace/debug lines were written");
    assert.ok(!output.includes(AGENT_TOKEN), "the agent token appears in the logs");
    assert.ok(!output.includes(HTTP_TOKEN), "the HTTP token appears in the logs");
  });
});

describe("--http-addr off loopback", () => {
  it("refuses to start without --http-token-file: exit 2, one line naming --http-addr", async () => {
    const dir = scratch();
    const r = await runAgentd([
      "serve",
      "--http-addr",
      "0.0.0.0:0",
      "--data-dir",
      path.join(dir, "data"),
      "--boundary-socket",
      path.join(dir, "b.sock"),
      "--agent-socket",
      path.join(dir, "a.sock"),
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /--http-addr: 0\.0\.0\.0:0 is not a loopback address: set --http-token-file/);
  });

  it("starts with a token file and then requires the bearer token", async () => {
    const dir = scratch();
    const agentd = await startAgentd({
      dir,
      args: ["--http-addr", "0.0.0.0:0", "--http-token-file", tokenFile(dir, "t", HTTP_TOKEN)],
    });
    try {
      assert.equal((await fetch(`${agentd.url}/api/v0/processes/list`)).status, 401);
      assert.equal((await fetch(`${agentd.url}/api/v0/processes/list`, { headers: bearerHeader(HTTP_TOKEN) })).status, 200);
      assert.equal((await fetch(`${agentd.url}/healthz`)).status, 200);
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  it("names --http-token-file when the file is missing or empty", async () => {
    const dir = scratch();
    for (const [file, why] of [
      [path.join(dir, "absent"), /cannot read .*ENOENT/],
      [tokenFile(dir, "empty", "  "), /is empty/],
    ] as const) {
      const r = await runAgentd(["serve", "--http-token-file", file, "--data-dir", path.join(dir, "data")]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^agentd: --http-token-file: /);
      assert.match(r.stderr, why);
    }
  });
});

/** Every file and directory under `root` with its permission bits and kind. */
function modes(root: string): { file: string; mode: number; kind: string }[] {
  const out: { file: string; mode: number; kind: string }[] = [];
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    const kind = st.isDirectory() ? "dir" : st.isSocket() ? "socket" : "file";
    out.push({ file: p, mode: st.mode & 0o777, kind });
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(root);
  return out;
}

describe("private files under umask 000", () => {
  it("every file agentd creates is 0600, every directory 0700, both sockets 0600", async () => {
    const dir = scratch();
    const previous = process.umask(0);
    let agentd: RunningAgentd;
    try {
      agentd = await startAgentd({ dir });
    } finally {
      process.umask(previous);
    }
    try {
      // Give every part a reason to write: tracked git paths, a boundary batch, a process.
      const res = await fetch(`${agentd.url}/api/v0/git/paths`, {
        method: "POST",
        headers: { "Coder-Chat-Id": "0b8a5a4e-0d5c-4c55-9e0c-6f4d7f1f9a01", "Content-Type": "application/json" },
        body: JSON.stringify({ paths: [dir] }),
      });
      assert.equal(res.status, 200);
      const socket = net.connect(agentd.boundarySocket);
      await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
      socket.end(encodeLogsFrame(logsRequest("umask")));
      const out = await new ProcessApi(agentd).run("echo hi > child-file", { workdir: dir });
      assert.equal(out.exit_code, 0);
      await until(() => fs.existsSync(path.join(agentd.dataDir, "gitwatch-paths.json")), "the tracked paths file");
      const entries = [...modes(agentd.dataDir), ...modes(path.dirname(agentd.agentSocket)), ...modes(agentd.boundarySocket)];
      assert.ok(entries.some((e) => e.file.endsWith("upstream.db-wal")), JSON.stringify(entries));
      for (const e of entries) {
        const want = e.kind === "dir" ? 0o700 : 0o600;
        assert.equal(e.mode.toString(8), want.toString(8), `${e.kind} ${e.file}`);
      }
      // The umask is the user's for what children write: agentd did not narrow it for them.
      assert.equal((fs.statSync(path.join(dir, "child-file")).mode & 0o777).toString(8), "666");
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  it("tightens an existing data dir of ours from 0755 to 0700 with one warning line", async () => {
    const dir = scratch();
    const dataDir = path.join(dir, "data");
    fs.mkdirSync(dataDir, { mode: 0o755 });
    fs.chmodSync(dataDir, 0o755);
    const agentd = await startAgentd({ dir });
    try {
      assert.equal((fs.statSync(dataDir).mode & 0o777).toString(8), "700");
      const warnings = agentd.logs.filter((l) => l.level === 40 && /data directory/.test(String(l.msg)));
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.was, "0755");
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });
});

describe("owned boundary socket", () => {
  it("leaves a regular file at --boundary-socket alone: one error naming the flag, /readyz false, the rest serves", async () => {
    const dir = scratch();
    const file = path.join(dir, "boundary.sock");
    fs.writeFileSync(file, "someone's data");
    const agentd = await startAgentd({ dir });
    try {
      const line = await agentd.waitForLog((l) => l.component === "boundary" && l.level === 50);
      assert.match(String(line.err), /--boundary-socket: .* exists and is not a socket: move that file away or choose another --boundary-socket/);
      assert.equal(fs.readFileSync(file, "utf8"), "someone's data");
      const checks = await readyz(agentd);
      assert.equal(checks.boundary, false);
      assert.equal(checks["agent-socket"], true);
      const out = await new ProcessApi(agentd).run("echo still serving");
      assert.equal(out.output, "still serving\n");
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
    assert.equal(fs.readFileSync(file, "utf8"), "someone's data", "not removed at shutdown either");
  });

  it("never takes a socket a live listener holds", async () => {
    const dir = scratch();
    const socketPath = path.join(dir, "boundary.sock");
    let accepted = 0;
    const owner = net.createServer((c) => {
      accepted++;
      c.destroy();
    });
    await new Promise<void>((resolve) => owner.listen(socketPath, resolve));
    try {
      const agentd = await startAgentd({ dir });
      try {
        const line = await agentd.waitForLog((l) => l.component === "boundary" && l.level === 50);
        assert.match(String(line.err), /--boundary-socket: socket path .* is not available: another server is listening on it .*set --boundary-socket or CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH/);
        assert.equal((await readyz(agentd)).boundary, false);
      } finally {
        assert.equal(await agentd.stop(), 0);
      }
      const before = accepted;
      await new Promise<void>((resolve, reject) => net.connect(socketPath, resolve).once("error", reject));
      await until(() => accepted > before, "the first owner to still accept");
    } finally {
      owner.close();
    }
  });
});

describe("watched sockets", () => {
  it("a removed socket turns /readyz false within 5 s, is logged and re-created", async () => {
    const dir = scratch();
    const agentd = await startAgentd({ dir });
    try {
      for (const [check, socketPath] of [
        ["boundary", agentd.boundarySocket],
        ["agent-socket", agentd.agentSocket],
      ] as const) {
        assert.equal((await readyz(agentd))[check], true);
        fs.rmSync(socketPath);
        await agentd.waitForLog((l) => l.level === 40 && l.path === socketPath && /removed/.test(String(l.msg)), 5_000);
        await until(async () => (await readyz(agentd))[check] === true && fs.existsSync(socketPath), `${check} re-created`);
        assert.equal((fs.lstatSync(socketPath).mode & 0o777).toString(8), "600");
        await new Promise<void>((resolve, reject) => net.connect(socketPath, resolve).once("error", reject));
      }
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  it("a replaced socket turns /readyz false within 5 s and is left alone until it is gone", async () => {
    const dir = scratch();
    const agentd = await startAgentd({ dir });
    try {
      fs.rmSync(agentd.agentSocket);
      fs.writeFileSync(agentd.agentSocket, "not ours");
      const took = await until(async () => (await readyz(agentd))["agent-socket"] === false, "agent-socket false", 5_000);
      assert.ok(took <= 5_000);
      await agentd.waitForLog((l) => l.level === 50 && l.path === agentd.agentSocket && /replaced/.test(String(l.msg)));
      assert.equal(fs.readFileSync(agentd.agentSocket, "utf8"), "not ours");
      fs.rmSync(agentd.agentSocket);
      await until(async () => (await readyz(agentd))["agent-socket"] === true, "agent-socket re-created");
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });
});
