import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import { describe, test } from "node:test";
import { AGENTD_BIN, runAgentd, startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";

type LogLine = Record<string, unknown>;

/** `agentd coderd-peer` as a child process, its JSON log lines collected. */
function startPeer(addr: string, dataDir: string) {
  const proc = spawn(process.execPath, [AGENTD_BIN, "coderd-peer", "--http-addr", addr, "--token", "t", "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: LogLine[] = [];
  let pending = "";
  proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const parts = pending.split("\n");
    pending = parts.pop()!;
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as LogLine);
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const waitLine = async (pred: (l: LogLine) => boolean): Promise<LogLine> => {
    for (let i = 0; i < 1500; i++) {
      const hit = lines.find(pred);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no such log line; got ${JSON.stringify(lines)}`);
  };
  return { proc, exited, waitLine };
}

function appStatus(agentd: RunningAgentd, message: string) {
  return runAgentd(["app-status", "--slug", "web", "--state", "working", "--message", message, "--socket-path", agentd.agentSocket]);
}

async function coderdReady(agentd: RunningAgentd, want: boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const ready = (await (await fetch(`${agentd.url}/readyz`)).json()) as { checks: Record<string, boolean> };
    if (ready.checks.coderd === want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`coderd readiness never became ${want}`);
}

describe("agentd coderd-peer", () => {
  test("logs every call agentd sends as a JSON line; killed and restarted, agentd reconnects by itself", async () => {
    const dataDir = tempDir();
    let peer = startPeer("127.0.0.1:0", dataDir);
    let agentd: RunningAgentd | undefined;
    try {
      const listening = await peer.waitLine((l) => l.msg === "coderd peer listening");
      agentd = await startAgentd({ args: ["--coder-url", String(listening.url), "--token", "t"] });
      const connected = await peer.waitLine((l) => l.msg === "rpc endpoint request");
      assert.equal(connected.status, 101);
      assert.equal(connected.role, "agentd");
      assert.equal(connected.version, "2.9");
      await peer.waitLine((l) => l.msg === "agent connected");
      await coderdReady(agentd, true);
      const run = await appStatus(agentd, "watch me");
      assert.equal(run.code, 0, run.stderr);
      const call = await peer.waitLine((l) => l.msg === "rpc received");
      assert.equal(call.method, "UpdateAppStatus");
      assert.equal(call.role, "agentd");
      assert.deepEqual(call.request, { slug: "web", message: "watch me" });

      peer.proc.kill("SIGKILL");
      await peer.exited;
      await coderdReady(agentd, false);
      const port = new URL(String(listening.url)).port;
      peer = startPeer(`127.0.0.1:${port}`, dataDir);
      await peer.waitLine((l) => l.msg === "agent connected");
      await coderdReady(agentd, true);
      const again = await appStatus(agentd, "after restart");
      assert.equal(again.code, 0, again.stderr);
      const second = await peer.waitLine((l) => l.msg === "rpc received");
      assert.deepEqual(second.request, { slug: "web", message: "after restart" });
    } finally {
      await agentd?.stop();
      peer.proc.kill("SIGTERM");
      assert.equal(await peer.exited, 0);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
