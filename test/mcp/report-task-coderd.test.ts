import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { UpdateAppStatusRequest_AppStatusState, UpdateAppStatusRequestSchema, type UpdateAppStatusRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import { startAgentd, type RunningAgentd } from "../helpers/agentd.js";
import { coderdPeer, waitFor } from "../helpers/coderd-peer.js";

// Started at the top level: the helper disposes of the peer when this file's tests are done.
const peer = await coderdPeer();
import { report, startMcp, type McpSession } from "./mcp-session.js";

const bytes = (req: UpdateAppStatusRequest) => Buffer.from(toBinary(UpdateAppStatusRequestSchema, req));

describe("coder_report_task end to end: MCP client → agentd mcp → agent socket → agentd → coderd", () => {
  let agentd: RunningAgentd;
  let session: McpSession;

  before(async () => {
    agentd = await startAgentd({ args: ["--coder-url", peer.url, "--token", "t"] });
    await agentd.waitForLog((l) => l.msg === "connected to coderd", 20_000);
    session = await startMcp(["--socket-path", agentd.agentSocket, "--app-status-slug", "my-agent"]);
  });
  after(async () => {
    await session.close();
    await agentd.stop();
    fs.rmSync(agentd.dir, { recursive: true, force: true });
  });

  test("coderd receives exactly UpdateAppStatus{slug, state, message=summary, uri=link}", async () => {
    const before = peer.callsOf("UpdateAppStatus").length;
    const res = await report(session, { summary: "Fixing the flaky test", link: "https://x.test/pr/9", state: "failure" });
    assert.equal(res.isError, undefined, res.content[0]?.text);
    const calls = peer.callsOf("UpdateAppStatus");
    assert.equal(calls.length, before + 1);
    const want = create(UpdateAppStatusRequestSchema, {
      slug: "my-agent",
      state: UpdateAppStatusRequest_AppStatusState.FAILURE,
      message: "Fixing the flaky test",
      uri: "https://x.test/pr/9",
    });
    assert.deepEqual(bytes(calls.at(-1)!.request as UpdateAppStatusRequest), bytes(want));
    assert.notEqual(calls.at(-1)!.role, "agent", "agentd does not pose as the Go agent");
  });

  test("with coderd gone the tool says 'agent not connected to coderd'; after it returns, reports flow again", async () => {
    const connects = agentd.logs.filter((l) => l.msg === "connected to coderd").length;
    await peer.close();
    let text = "";
    const deadline = Date.now() + 20_000;
    while (!text.includes("agent not connected to coderd")) {
      assert.ok(Date.now() < deadline, `last answer: ${text}`);
      const res = await report(session, { summary: "Still here", link: "", state: "working" });
      assert.equal(res.isError, true);
      text = res.content[0]!.text!;
    }
    assert.equal(text, "agent not connected to coderd");
    await peer.start();
    await waitFor(() => agentd.logs.filter((l) => l.msg === "connected to coderd").length > connects, 30_000, "agentd to reconnect");
    const before = peer.callsOf("UpdateAppStatus").length;
    const res = await report(session, { summary: "Still here", link: "", state: "working" });
    assert.equal(res.isError, undefined, res.content[0]?.text);
    assert.equal(peer.callsOf("UpdateAppStatus").length, before + 1);
  });
});
