import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { UpdateAppStatusRequest_AppStatusState as State } from "../../gen/coder/agent/v2/agent_pb.js";
import { EmbeddedStore } from "../../src/coderd/embedded-store.js";
import { EmbeddedUpstream } from "../../src/coderd/embedded.js";
import { createLogger } from "../../src/log.js";
import { startAgentd, tempDir } from "../helpers/agentd.js";
import { rejection } from "../helpers/rejection.js";

const log = createLogger("silent");


describe("embedded upstream", () => {
  let dir: string;
  let upstream: EmbeddedUpstream;

  before(async () => {
    dir = tempDir();
    upstream = new EmbeddedUpstream(dir, log);
    await upstream.start();
  });
  after(async () => {
    await upstream.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("stores an app status exactly as sent", async () => {
    await upstream.client.updateAppStatus({ slug: "x", state: State.IDLE, message: "m", uri: "https://e/x" });
    const store = EmbeddedStore.inDataDir(dir, { readonly: true });
    const last = store.appStatuses().at(-1);
    store.close();
    assert.deepEqual(
      { slug: last?.slug, state: last?.state, message: last?.message, uri: last?.uri },
      { slug: "x", state: State.IDLE, message: "m", uri: "https://e/x" },
    );
  });

  test("rejects what coderd rejects, with coderd's text", async () => {
    const long = await rejection(upstream.client.updateAppStatus({ slug: "x", message: "é".repeat(81) }));
    assert.equal(long.rawMessage, "Message is too long.");
    assert.equal(long.code, Code.InvalidArgument);
    const state = await rejection(upstream.client.updateAppStatus({ slug: "x", state: 9 as State }));
    assert.equal(state.rawMessage, "Invalid state provided.");
    const slug = await rejection(upstream.client.updateAppStatus({ slug: "" }));
    assert.equal(slug.rawMessage, "Failed to get workspace app.");
  });

  test("accepts a message of exactly 160 bytes", async () => {
    await upstream.client.updateAppStatus({ slug: "x", message: "a".repeat(160) });
  });

  test("creates, lists and deletes sub-agents with real ids and tokens", async () => {
    const created = await upstream.client.createSubAgent({
      name: "dev",
      directory: "/src",
      apps: [{ slug: "web" }, { slug: "web" }, { slug: "Bad Slug" }],
    });
    assert.equal(created.agent?.name, "dev");
    assert.equal(created.agent?.id.length, 16);
    assert.equal(created.agent?.authToken.length, 16);
    assert.notDeepEqual(created.agent?.id, created.agent?.authToken);
    assert.deepEqual(
      created.appCreationErrors.map((e) => [e.index, e.field, e.error]),
      [
        [1, "slug", '"web" is already in use'],
        [2, "slug", '"Bad Slug" does not match regex "^[a-z0-9](-?[a-z0-9])*$"'],
      ],
    );
    const listed = await upstream.client.listSubAgents({});
    assert.deepEqual(
      listed.agents.map((a) => a.name),
      ["dev"],
    );
    assert.deepEqual(listed.agents[0]?.authToken, created.agent?.authToken);
    await upstream.client.deleteSubAgent({ id: created.agent?.id });
    assert.equal((await upstream.client.listSubAgents({})).agents.length, 0);
  });

  test("validates sub-agent names like coderd", async () => {
    const empty = await rejection(upstream.client.createSubAgent({ name: "" }));
    assert.equal(empty.rawMessage, "field: name detail: agent name cannot be empty");
    const bad = await rejection(upstream.client.createSubAgent({ name: "-x" }));
    assert.match(bad.rawMessage, /^field: name detail: agent name "-x" does not match regex/);
    const short = await rejection(upstream.client.deleteSubAgent({ id: new Uint8Array(3) }));
    assert.equal(short.rawMessage, "invalid UUID (got 3 bytes)");
  });

  test("keeps sub-agents across a restart", async () => {
    const created = await upstream.client.createSubAgent({ name: "kept" });
    await upstream.stop();
    const again = await rejection(upstream.client.listSubAgents({}));
    assert.equal(again.code, Code.Unavailable);
    await upstream.start();
    const listed = await upstream.client.listSubAgents({});
    assert.deepEqual(listed.agents.find((a) => a.name === "kept")?.id, created.agent?.id);
  });
});

describe("agentd serve without --coder-url", () => {
  test("uses the embedded upstream in the data dir", async () => {
    const agentd = await startAgentd();
    try {
      const selected = await agentd.waitForLog((l) => l.msg === "upstream selected");
      assert.equal(selected.upstream, "embedded");
      assert.ok(fs.existsSync(path.join(agentd.dataDir, "upstream.db")));
      assert.equal((await fetch(`${agentd.url}/readyz`)).status, 200);
    } finally {
      await agentd.stop();
    }
  });
});
