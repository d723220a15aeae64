import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, test } from "node:test";
import { AGENTD_BIN, runAgentd, startAgentd } from "../helpers/agentd.js";

describe("agentd coderd-peer", () => {
  test("accepts agentd serve and logs every call it receives as a JSON line", async () => {
    const proc = spawn(process.execPath, [AGENTD_BIN, "coderd-peer", "--http-addr", "127.0.0.1:0", "--token", "t"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: Record<string, unknown>[] = [];
    let pending = "";
    proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    const waitLine = async (pred: (l: Record<string, unknown>) => boolean) => {
      for (let i = 0; i < 1500; i++) {
        const hit = lines.find(pred);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no such log line; got ${JSON.stringify(lines)}`);
    };
    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    try {
      const listening = await waitLine((l) => l.msg === "coderd peer listening");
      const agentd = await startAgentd({ args: ["--coder-url", String(listening.url), "--token", "t"] });
      try {
        await waitLine((l) => l.msg === "agent connected");
        const run = await runAgentd([
          "app-status",
          "--slug",
          "web",
          "--state",
          "working",
          "--message",
          "watch me",
          "--socket-path",
          agentd.agentSocket,
        ]);
        assert.equal(run.code, 0, run.stderr);
        const call = await waitLine((l) => l.msg === "rpc received");
        assert.equal(call.method, "UpdateAppStatus");
        assert.equal(call.role, "agentd");
        assert.deepEqual(call.request, { slug: "web", message: "watch me" });
      } finally {
        await agentd.stop();
      }
    } finally {
      proc.kill("SIGTERM");
      assert.equal(await exited, 0);
    }
  });
});
