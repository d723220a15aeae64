import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, it } from "node:test";
import { defaultAgentSocket, defaultBoundarySocket } from "../../src/default-paths.js";
import { AGENTD_BIN, runAgentd, tempDir } from "../helpers/agentd.js";

const listeners: net.Server[] = [];
after(() => listeners.forEach((l) => l.close()));

/** A stand-in for Coder's Go agent holding a socket path. */
async function goAgentListening(socketPath: string): Promise<void> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  const server = net.createServer((c) => c.end());
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  listeners.push(server);
}

/** The environment of a workspace whose temp and runtime dirs live under `root`, with no socket variables set. */
function workspaceEnv(root: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: root, XDG_RUNTIME_DIR: path.join(root, "run") };
  for (const name of ["CODER_AGENT_SOCKET_PATH", "CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH", "AGENTD_DATA_DIR"]) env[name] = undefined;
  return env;
}

describe("default socket paths beside Coder's agent", () => {
  it("are agentd's own, apart from the Go agent's boundary and agent sockets", () => {
    const env = { XDG_RUNTIME_DIR: "/run/user/1000" };
    assert.equal(defaultAgentSocket(env), "/run/user/1000/agentd/agent.sock");
    assert.equal(defaultBoundarySocket(env), "/run/user/1000/agentd/boundary-audit.sock");
    assert.notEqual(defaultAgentSocket(env), "/run/user/1000/coder-agent.sock");
  });

  it("agentd serve starts while the Go agent holds its defaults, and the CLIs find agentd by default", async () => {
    const root = fs.realpathSync(tempDir());
    const env = workspaceEnv(root);
    await goAgentListening(path.join(root, "boundary-audit.sock"));
    await goAgentListening(path.join(root, "run", "coder-agent.sock"));
    const proc = spawn(process.execPath, [AGENTD_BIN, "serve", "--http-addr", "127.0.0.1:0", "--data-dir", path.join(root, "data")], {
      env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let out = "";
        proc.stdout.setEncoding("utf8").on("data", (c: string) => {
          out += c;
          const line = out.split("\n").find((l) => l.includes('"agentd started"'));
          if (line) resolve(JSON.parse(line) as Record<string, unknown>);
        });
        proc.once("exit", (code) => reject(new Error(`agentd exited ${code}: ${out}`)));
      });
      assert.equal(started.agentSocket, path.join(root, "run", "agentd", "agent.sock"));
      assert.equal(started.boundarySocket, path.join(root, "run", "agentd", "boundary-audit.sock"));
      assert.equal(fs.statSync(path.join(root, "run", "agentd")).mode & 0o777, 0o700);
      const ready = await fetch(`${String(started.url)}/readyz`);
      assert.equal(ready.status, 200);
      const ping = await runAgentd(["sync", "ping"], { env });
      assert.equal(ping.code, 0, ping.stderr);
    } finally {
      proc.kill("SIGTERM");
      await new Promise((resolve) => proc.once("exit", resolve));
    }
  });

  it("a live socket at the agent socket path stops start-up with one line naming the flag and its env var", async () => {
    const root = tempDir();
    const goAgent = path.join(root, "coder-agent.sock");
    await goAgentListening(goAgent);
    const env = { ...workspaceEnv(root), CODER_AGENT_SOCKET_PATH: goAgent };
    const res = await runAgentd(["serve", "--http-addr", "127.0.0.1:0", "--data-dir", path.join(root, "data")], { env });
    assert.equal(res.code, 2);
    assert.equal(res.stderr.trim().split("\n").length, 1, res.stderr);
    assert.match(res.stderr, /^agentd: --agent-socket: .* another server is listening on it .*set --agent-socket or CODER_AGENT_SOCKET_PATH/);
  });
});
