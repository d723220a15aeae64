import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { UpdateAppStatusRequest_AppStatusState, type UpdateAppStatusRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import { runAgentd, startAgentd, type RunningAgentd } from "../helpers/agentd.js";
import { coderdPeer, waitFor } from "../helpers/coderd-peer.js";

// Started at the top level: the helper disposes of the peer when this file's tests are done.
const peer = await coderdPeer();

describe("agent socket CLI against agentd connected to a coderd peer", () => {
  let agentd: RunningAgentd;
  const run = (...args: string[]) => runAgentd([...args, "--socket-path", agentd.agentSocket], { timeoutMs: 30_000 });

  before(async () => {
    agentd = await startAgentd({ args: ["--coder-url", peer.url, "--token", "t"] });
    await agentd.waitForLog((l) => l.msg === "connected to coderd", 20_000);
  });
  after(async () => {
    await agentd.stop();
    fs.rmSync(agentd.dir, { recursive: true, force: true });
  });

  test("app-status arrives at coderd unchanged", async () => {
    const res = await run("app-status", "--slug", "web", "--state", "complete", "--message", "Done", "--uri", "https://x.test/");
    assert.equal(res.code, 0, res.stderr);
    const req = peer.callsOf("UpdateAppStatus").at(-1)!.request as UpdateAppStatusRequest;
    assert.deepEqual(
      { slug: req.slug, state: req.state, message: req.message, uri: req.uri },
      { slug: "web", state: UpdateAppStatusRequest_AppStatusState.COMPLETE, message: "Done", uri: "https://x.test/" },
    );
  });

  test("coderd's errors pass through to the CLI as one line", async () => {
    peer.failNext("UpdateAppStatus", 1, new ConnectError("Failed to get workspace app.", Code.Unknown));
    const res = await run("app-status", "--slug", "nope", "--state", "idle", "--message", "m");
    assert.equal(res.code, 1);
    assert.deepEqual(res.stderr.split("\n").filter(Boolean), ["agentd: Failed to get workspace app."]);
  });

  test("subagent create / list / delete reach coderd", async () => {
    const created = JSON.parse((await run("subagent", "create", "--name", "box", "-o", "json")).stdout);
    assert.equal(peer.callsOf("CreateSubAgent").length, 1);
    const listed = JSON.parse((await run("subagent", "list", "-o", "json")).stdout);
    assert.ok(listed.some((a: { id: string }) => a.id === created.id));
    assert.equal((await run("subagent", "delete", created.id)).code, 0);
    assert.equal(peer.callsOf("DeleteSubAgent").length, 1);
  });

  test("with coderd down app-status fails 'agent not connected to coderd' and sync keeps working", async () => {
    const connects = agentd.logs.filter((l) => l.msg === "connected to coderd").length;
    await peer.close();
    let res = await run("app-status", "--slug", "web", "--state", "idle", "--message", "m");
    const deadline = Date.now() + 20_000;
    while (!res.stderr.includes("agent not connected to coderd") && Date.now() < deadline) {
      res = await run("app-status", "--slug", "web", "--state", "idle", "--message", "m");
    }
    assert.equal(res.code, 1);
    assert.deepEqual(res.stderr.split("\n").filter(Boolean), ["agentd: agent not connected to coderd"]);
    assert.equal((await run("sync", "ping")).code, 0);
    await peer.start();
    await waitFor(() => agentd.logs.filter((l) => l.msg === "connected to coderd").length > connects, 30_000, "agentd to reconnect");
  });
});
