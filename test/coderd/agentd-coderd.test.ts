import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { describe, test } from "node:test";
import { UpdateAppStatusRequest_AppStatusState } from "../../gen/coder/agent/v2/agent_pb.js";
import { runAgentd, startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";
import { coderdPeer, waitFor } from "../helpers/coderd-peer.js";

async function readyz(agentd: RunningAgentd): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
  const res = await fetch(`${agentd.url}/readyz`);
  return (await res.json()) as { ready: boolean; checks: Record<string, boolean> };
}

async function waitReady(agentd: RunningAgentd, want: boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await readyz(agentd)).checks.coderd !== want) {
    if (Date.now() > deadline) throw new Error(`coderd readiness never became ${want}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function appStatus(agentd: RunningAgentd, message: string) {
  return runAgentd(["app-status", "--slug", "web", "--state", "complete", "--message", message, "--socket-path", agentd.agentSocket]);
}

describe("agentd serve --coder-url against the coderd peer", () => {
  test("connects with role agentd and version 2.9 and reports ready", async () => {
    const peer = await coderdPeer();
    const agentd = await startAgentd({ args: ["--coder-url", peer.url, "--token", "t"] });
    try {
      await waitReady(agentd, true);
      assert.equal(peer.requests[0]?.role, "agentd");
      assert.equal(peer.requests[0]?.version, "2.9");
      assert.equal(peer.requests[0]?.token, "t");
      const metrics = await (await fetch(`${agentd.url}/metrics`)).text();
      assert.match(metrics, /^agentd_coderd_connected 1$/m);
    } finally {
      await agentd.stop();
    }
  });

  test("an app status sent to the agent socket reaches coderd unchanged", async () => {
    const peer = await coderdPeer();
    const agentd = await startAgentd({ args: ["--coder-url", peer.url, "--token", "t"] });
    try {
      await waitReady(agentd, true);
      const run = await appStatus(agentd, "done");
      assert.equal(run.code, 0, run.stderr);
      const [call] = peer.callsOf("UpdateAppStatus");
      assert.equal(call?.role, "agentd");
      const [status] = peer.store.appStatuses();
      assert.equal(status?.slug, "web");
      assert.equal(status?.state, UpdateAppStatusRequest_AppStatusState.COMPLETE);
      assert.equal(status?.message, "done");
      assert.equal(status?.uri, "");
    } finally {
      await agentd.stop();
    }
  });

  test("an UpdateAppStatus sent as raw dRPC to the agent socket arrives at coderd byte-identical", async () => {
    const peer = await coderdPeer();
    const agentd = await startAgentd({ args: ["--coder-url", peer.url, "--token", "t"] });
    try {
      await waitReady(agentd, true);
      const name = Buffer.from("/coder.agentsocket.v1.AgentSocket/UpdateAppStatus");
      // spec §5: {slug:"x", state:IDLE, message:"m"}; Invoke(s1,m1), Message(s1,m2), CloseSend(s1,m3).
      const request = Buffer.from("0a01781001" + "1a016d", "hex");
      const sock = net.connect(agentd.agentSocket);
      sock.on("error", () => undefined);
      const reply: Buffer[] = [];
      sock.on("data", (c: Buffer) => reply.push(c));
      sock.write(
        Buffer.concat([
          Buffer.from([0x03, 0x01, 0x01, name.length]),
          name,
          Buffer.from([0x05, 0x01, 0x02, request.length]),
          request,
          Buffer.from("0d010300", "hex"),
        ]),
      );
      await waitFor(() => Buffer.concat(reply).length >= 8, 20_000, "the agent socket's reply");
      sock.destroy();
      assert.deepEqual(Buffer.concat(reply), Buffer.from("05010100" + "0d010200", "hex"));
      const [call] = peer.callsOf("UpdateAppStatus");
      assert.deepEqual(Buffer.from(call!.bytes), request);
    } finally {
      await agentd.stop();
    }
  });

  test("while coderd is away calls fail with 'agent not connected to coderd'; after it returns they work", async () => {
    const peer = await coderdPeer();
    const agentd = await startAgentd({ args: ["--coder-url", peer.url, "--token", "t"] });
    try {
      await waitReady(agentd, true);
      await peer.close();
      await waitReady(agentd, false);
      const away = await appStatus(agentd, "while away");
      assert.notEqual(away.code, 0);
      assert.match(away.stderr + away.stdout, /agent not connected to coderd/);
      await peer.start();
      await waitReady(agentd, true);
      const back = await appStatus(agentd, "back");
      assert.equal(back.code, 0, back.stderr);
      assert.deepEqual(
        peer.store.appStatuses().map((s) => s.message),
        ["back"],
      );
      await agentd.waitForLog((l) => l.msg === "disconnected from coderd");
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  test("a wrong token logs coderd's 401 once, retries with backoff and keeps the daemon up", async () => {
    const peer = await coderdPeer();
    const agentd = await startAgentd({ args: ["--coder-url", peer.url, "--token", "wrong"] });
    try {
      await waitFor(() => peer.requests.length >= 3, 30_000, "three attempts");
      assert.ok(peer.requests.every((r) => r.status === 401));
      const warnings = agentd.logs.filter((l) => l.msg === "cannot connect to coderd");
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.equal(warnings[0]?.status, 401);
      assert.equal(warnings[0]?.message, "Workspace agent not authorized.");
      assert.equal(warnings[0]?.reason, "unauthorized");
      assert.equal((await fetch(`${agentd.url}/healthz`)).status, 200);
      const ready = await readyz(agentd);
      assert.equal(ready.checks.coderd, false);
      assert.equal(ready.ready, false);
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  test("--token-file is read and trimmed", async () => {
    const peer = await coderdPeer();
    const dir = tempDir();
    const file = path.join(dir, "token");
    fs.writeFileSync(file, "t\n");
    const agentd = await startAgentd({ args: ["--coder-url", peer.url, "--token-file", file] });
    try {
      await waitReady(agentd, true);
      assert.equal(peer.requests[0]?.token, "t");
    } finally {
      await agentd.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an unreadable --token-file is a usage error naming the flag", async () => {
    const missing = path.join(tempDir(), "no-such-token");
    const run = await runAgentd(["serve", "--coder-url", "http://127.0.0.1:1", "--token-file", missing]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--token-file: cannot read ".*no-such-token" \(ENOENT\)/);
  });
});
