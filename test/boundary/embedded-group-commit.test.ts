import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { Agent as AgentService } from "../../gen/coder/agent/v2/agent_pb.js";
import { embeddedAgentService } from "../../src/coderd/embedded.js";
import { EmbeddedStore } from "../../src/coderd/embedded-store.js";
import { createInProcessTransport } from "../../src/coderd/in-process-transport.js";
import { tempDir } from "../helpers/agentd.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function scratch(): string {
  const d = tempDir("agentd-embedded-commit-");
  dirs.push(d);
  return d;
}

describe("embedded upstream group commit", () => {
  test("concurrent ReportBoundaryLogs calls resolve only once their batch is readable from the file, in call order", async () => {
    const dir = scratch();
    const store = EmbeddedStore.inDataDir(dir);
    const client = createClient(AgentService, createInProcessTransport(AgentService, embeddedAgentService(store)));
    const reader = EmbeddedStore.inDataDir(dir, { readonly: true });
    const calls = Array.from({ length: 50 }, async (_, i) => {
      await client.reportBoundaryLogs({ sessionId: String(i), logs: [{ allowed: true }, { allowed: false }] });
      // Another connection to the database sees it: the transaction has committed.
      assert.ok(
        reader.boundaryLogBatches().some((b) => b.sessionId === String(i)),
        `batch ${i} stored before its call resolved`,
      );
    });
    await Promise.all(calls);
    assert.deepEqual(
      reader.boundaryLogBatches().map((b) => Number(b.sessionId)),
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.equal(reader.boundaryLogCount(), 100);
    reader.close();
    store.close();
  });

  test("a failed group commit fails every call in it and stores none of them", async () => {
    const dir = scratch();
    const store = EmbeddedStore.inDataDir(dir);
    const client = createClient(AgentService, createInProcessTransport(AgentService, embeddedAgentService(store)));
    // A second writer holding the write lock makes the commit fail with SQLITE_BUSY.
    const blocker = EmbeddedStore.inDataDir(dir);
    (blocker as unknown as { db: { exec(sql: string): void } }).db.exec("BEGIN IMMEDIATE");
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => client.reportBoundaryLogs({ sessionId: String(i) })),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      Array(5).fill("rejected"),
    );
    (blocker as unknown as { db: { exec(sql: string): void } }).db.exec("ROLLBACK");
    blocker.close();
    assert.deepEqual(store.boundaryLogBatches(), []);
    store.close();
  });

  test("after SIGKILL every batch whose call resolved is stored, in order", async () => {
    const dir = scratch();
    const reporter = spawn(
      process.execPath,
      ["--import", "tsx", path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "embedded-reporter.ts"), dir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const acked = new Set<number>();
    let pending = "";
    reporter.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) acked.add(Number(line));
    });
    const exited = new Promise((resolve) => reporter.once("exit", resolve));
    const deadline = Date.now() + 60_000;
    while (acked.size < 2000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    reporter.kill("SIGKILL");
    await exited;
    assert.ok(acked.size >= 2000, "the reporter made progress");
    const store = EmbeddedStore.inDataDir(dir);
    const stored = store.boundaryLogBatches().map((b) => Number(b.sessionId));
    store.close();
    const missing = [...acked].filter((n) => !stored.includes(n));
    assert.deepEqual(missing, [], "no acknowledged batch lost");
    assert.deepEqual(stored, Array.from({ length: stored.length }, (_, i) => i), "stored in call order, none garbled");
  });
});
