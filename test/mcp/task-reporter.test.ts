import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { UpdateAppStatusRequest_AppStatusState as State } from "../../gen/coder/agent/v2/agent_pb.js";
import type { AgentSocketPart } from "../../src/agentsocket/agent-socket.js";
import { createLogger } from "../../src/log.js";
import { TaskReporter } from "../../src/mcp/task-reporter.js";
import { RecordingUpstream, startSocketPart } from "../agentsocket/fixtures.js";

describe("TaskReporter: Coder's rules for consecutive reports", () => {
  let upstream: RecordingUpstream;
  let part: AgentSocketPart;
  let dir: string;
  let reporter: TaskReporter;
  const sent = () => upstream.appStatuses.map((r) => ({ state: r.state, message: r.message, uri: r.uri }));

  before(async () => {
    upstream = new RecordingUpstream();
    let socketPath: string;
    ({ part, socketPath, dir } = await startSocketPart(upstream));
    reporter = new TaskReporter(socketPath, "app", createLogger("silent"));
  });
  after(async () => {
    await part.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("an empty summary keeps the last summary (and link, when it is empty too), so a bare repeat is dropped", async () => {
    assert.deepEqual(await reporter.report({ state: "working", summary: "Cloning the repository", link: "https://x.test/pr/1" }), { ok: true, sent: true });
    assert.deepEqual(await reporter.report({ state: "working", summary: "", link: "" }), { ok: true, sent: false });
    assert.deepEqual(await reporter.report({ state: "idle", summary: "", link: "" }), { ok: true, sent: true });
    assert.deepEqual(await reporter.report({ state: "idle", summary: "", link: "https://x.test/pr/2" }), { ok: true, sent: true });
    assert.deepEqual(sent(), [
      { state: State.WORKING, message: "Cloning the repository", uri: "https://x.test/pr/1" },
      { state: State.IDLE, message: "Cloning the repository", uri: "https://x.test/pr/1" },
      { state: State.IDLE, message: "Cloning the repository", uri: "https://x.test/pr/2" },
    ]);
  });

  test("a summary is limited to 160 UTF-8 bytes, with Coder's error text", async () => {
    assert.deepEqual(await reporter.report({ state: "working", summary: "é".repeat(81), link: "" }), {
      ok: false,
      error: "summary must be less than 160 characters",
    });
    assert.deepEqual(await reporter.report({ state: "working", summary: "é".repeat(80), link: "" }), { ok: true, sent: true });
    assert.equal(sent().at(-1)?.message, "é".repeat(80));
  });

  test("a report that failed is not remembered, so sending it again is not dropped", async () => {
    const r = { state: "failure", summary: "Tests fail", link: "" } as const;
    upstream.connected = false;
    try {
      assert.deepEqual(await reporter.report(r), { ok: false, error: "agent not connected to coderd" });
    } finally {
      upstream.connected = true;
    }
    assert.deepEqual(await reporter.report(r), { ok: true, sent: true });
    assert.deepEqual(sent().at(-1), { state: State.FAILURE, message: "Tests fail", uri: "" });
  });
});
