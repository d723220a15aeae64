import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { UpdateAppStatusRequest_AppStatusState, type UpdateAppStatusRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import { EmbeddedStore } from "../../src/coderd/embedded-store.js";
import { startAgentd, type RunningAgentd } from "../helpers/agentd.js";
import { report, startMcp, type McpSession } from "./mcp-session.js";

function statuses(dataDir: string): UpdateAppStatusRequest[] {
  const store = EmbeddedStore.inDataDir(dataDir, { readonly: true });
  try {
    return store.appStatuses();
  } finally {
    store.close();
  }
}

describe("agentd mcp: coder_report_task through the agent socket", () => {
  let agentd: RunningAgentd;
  let session: McpSession;

  before(async () => {
    agentd = await startAgentd();
    session = await startMcp(["--socket-path", agentd.agentSocket, "--app-status-slug", "my-agent"]);
  });
  after(async () => {
    await session.close();
    await agentd.stop();
    fs.rmSync(agentd.dir, { recursive: true, force: true });
  });

  test("lists coder_report_task with Coder's input schema", async () => {
    const { tools } = await session.client.listTools();
    const tool = tools.find((t) => t.name === "coder_report_task");
    assert.ok(tool, "tool listed");
    assert.match(tool.description ?? "", /^Report progress on your work\./);
    const schema = tool.inputSchema as { properties: Record<string, { type: string; enum?: string[] }>; required: string[] };
    assert.deepEqual(Object.keys(schema.properties).sort(), ["link", "state", "summary"]);
    assert.deepEqual(schema.properties.state!.enum, ["working", "idle", "complete", "failure"]);
    assert.deepEqual([...schema.required].sort(), ["link", "state", "summary"]);
  });

  test("a report reaches the upstream as UpdateAppStatus{slug, state, message=summary, uri=link}", async () => {
    const before = statuses(agentd.dataDir).length;
    const res = await report(session, { summary: "Cloning the repository", link: "https://x.test/pr/7", state: "working" });
    assert.equal(res.isError, undefined);
    assert.equal(res.content[0]!.text, '{"message":"Thanks for reporting!"}\n');
    const got = statuses(agentd.dataDir);
    assert.equal(got.length, before + 1);
    const last = got.at(-1)!;
    assert.deepEqual(
      { slug: last.slug, state: last.state, message: last.message, uri: last.uri },
      { slug: "my-agent", state: UpdateAppStatusRequest_AppStatusState.WORKING, message: "Cloning the repository", uri: "https://x.test/pr/7" },
    );
  });

  test("identical consecutive reports are dropped; a changed one is sent", async () => {
    const a = { summary: "Working on the parser", link: "", state: "working" };
    const start = statuses(agentd.dataDir).length;
    await report(session, a);
    await report(session, a);
    assert.equal(statuses(agentd.dataDir).length, start + 1);
    await report(session, { ...a, state: "complete" });
    await report(session, a);
    const got = statuses(agentd.dataDir);
    assert.equal(got.length, start + 3);
    assert.equal(got.at(-2)!.state, UpdateAppStatusRequest_AppStatusState.COMPLETE);
  });

  test("a summary over 160 bytes is a tool error, not a crash", async () => {
    const res = await report(session, { summary: "x".repeat(161), link: "", state: "idle" });
    assert.equal(res.isError, true);
    assert.equal(res.content[0]!.text, "summary must be less than 160 characters");
    assert.ok((await session.client.listTools()).tools.length > 0, "the server keeps serving");
  });

  test("stdout carries only MCP: logs go to stderr", () => {
    assert.deepEqual(session.errors, []);
    assert.match(session.stderr(), /"msg":"task reported"/);
  });
});

describe("agentd mcp without a usable agent socket or slug", () => {
  test("an unreachable socket is a tool error saying 'Failed to connect to agent socket'", async () => {
    const session = await startMcp(["--socket-path", path.join("/nonexistent-dir", "agent.sock"), "--app-status-slug", "s"]);
    try {
      const res = await report(session, { summary: "hello", link: "", state: "working" });
      assert.equal(res.isError, true);
      assert.match(res.content[0]!.text!, /^Failed to connect to agent socket at \/nonexistent-dir\/agent\.sock/);
      assert.ok((await session.client.listTools()).tools.length > 0, "the server keeps serving");
    } finally {
      await session.close();
    }
  });

  test("without --app-status-slug the tool explains how to configure it", async () => {
    const session = await startMcp(["--socket-path", "/nonexistent-dir/agent.sock"]);
    try {
      const res = await report(session, { summary: "hello", link: "", state: "working" });
      assert.equal(res.isError, true);
      assert.match(res.content[0]!.text!, /--app-status-slug or CODER_MCP_APP_STATUS_SLUG/);
    } finally {
      await session.close();
    }
  });

  test("CODER_MCP_APP_STATUS_SLUG configures the slug", async () => {
    const agentd = await startAgentd();
    const session = await startMcp(["--socket-path", agentd.agentSocket], { CODER_MCP_APP_STATUS_SLUG: "from-env" });
    try {
      const res = await report(session, { summary: "hi", link: "", state: "idle" });
      assert.equal(res.isError, undefined);
      assert.equal(statuses(agentd.dataDir).at(-1)!.slug, "from-env");
    } finally {
      await session.close();
      await agentd.stop();
      fs.rmSync(agentd.dir, { recursive: true, force: true });
    }
  });
});
