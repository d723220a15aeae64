import assert from "node:assert/strict";
import fs from "node:fs";
import { after, describe, test } from "node:test";
import { AuditClient } from "../../src/boundary/audit-client.js";
import { runAgentd, startAgentd, tempDir } from "../helpers/agentd.js";
import { scrape, waitUntil } from "./harness.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function scratch(): string {
  const d = tempDir("agentd-boundary-flags-");
  dirs.push(d);
  return d;
}

describe("--boundary-spool-bytes", () => {
  test("rejects a value that is not a positive whole number, naming the flag", async () => {
    const { code, stderr } = await runAgentd(["serve", "--data-dir", scratch(), "--boundary-spool-bytes", "64MiB"]);
    assert.equal(code, 2);
    assert.match(stderr, /--boundary-spool-bytes/);
  });

  test("AGENTD_BOUNDARY_SPOOL_BYTES bounds the spool: past it batches are counted as spool_full", async () => {
    const agentd = await startAgentd({
      dir: scratch(),
      args: ["--coder-url", "http://127.0.0.1:9", "--token", "t"],
      env: { AGENTD_BOUNDARY_SPOOL_BYTES: "4000" },
    });
    const client = new AuditClient({ socketPath: agentd.boundarySocket, flushIntervalMs: 20 });
    try {
      for (let i = 0; i < 400; i++) {
        await client.room();
        client.audit({ allowed: false, method: "GET", url: `https://example.com/${i}` });
      }
      await client.close();
      const dropped = 'agent_boundary_log_proxy_batches_dropped_total{reason="spool_full"}';
      await waitUntil(async () => (await scrape(agentd.url, dropped)) > 0, "spool_full drops");
      assert.ok((await scrape(agentd.url, "agentd_boundary_spool_bytes")) <= 4000);
      assert.ok((await scrape(agentd.url, "agentd_boundary_spool_batches")) > 0);
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });
});
