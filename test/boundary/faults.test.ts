import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, test } from "node:test";
import type { ReportBoundaryLogsRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import { AuditClient } from "../../src/boundary/audit-client.js";
import { encodeLogsFrame } from "../../src/boundary/codec.js";
import { MAX_CONNECTIONS } from "../../src/boundary/socket-server.js";
import { SPOOL_DB_FILE } from "../../src/boundary/spool.js";
import { EmbeddedStore } from "../../src/coderd/embedded-store.js";
import { startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";
import { coderdPeer } from "../helpers/coderd-peer.js";
import { closed, connect, hasPromtool, logsRequest, scrape, startProxy, waitUntil, write } from "./harness.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function scratch(): string {
  const d = tempDir("agentd-boundary-faults-");
  dirs.push(d);
  return d;
}

/** Sequence numbers of one session's delivered logs, in arrival order. */
function sequence(batches: ReportBoundaryLogsRequest[], sessionId: string): number[] {
  return batches.filter((b) => b.sessionId === sessionId).flatMap((b) => b.logs.map((l) => l.sequenceNumber));
}

/** Arrival order with re-sent duplicates (at-least-once) removed. */
function firstArrivals(seq: number[]): number[] {
  const seen = new Set<number>();
  return seq.filter((n) => !seen.has(n) && seen.add(n));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Sends `n` logs (or until `stop`) paced by the client's channel, `perTick` at a time with a pause between. */
async function stream(client: AuditClient, n: number, stop = () => false, perTick = 20, pauseMs = 5): Promise<void> {
  for (let i = 0; i < n && !stop(); i++) {
    await client.room();
    client.audit({ allowed: false, method: "GET", url: `https://example.com/${i}` });
    if (i % perTick === perTick - 1) await new Promise((r) => setTimeout(r, pauseMs));
  }
}

/** What the daemon's embedded upstream has stored so far. */
function embeddedBatches(agentd: RunningAgentd): ReportBoundaryLogsRequest[] {
  const store = EmbeddedStore.inDataDir(agentd.dataDir, { readonly: true });
  try {
    return store.boundaryLogBatches();
  } finally {
    store.close();
  }
}

/** True when the process `pid` has loaded SQLite (better-sqlite3's native module). */
function loadedSqlite(pid: number): boolean {
  return fs.readFileSync(`/proc/${pid}/maps`, "utf8").includes("better_sqlite3.node");
}

describe("the spool is opened only when needed", () => {
  test("with a healthy link nothing is spooled, no spool file is made and SQLite is never loaded", async () => {
    const peer = await coderdPeer();
    const agentd = await startAgentd({ dir: scratch(), args: ["--coder-url", peer.url, "--token", "t"] });
    const client = new AuditClient({ socketPath: agentd.boundarySocket, flushIntervalMs: 20 });
    try {
      await stream(client, 500);
      await client.close();
      await waitUntil(() => sequence(peer.store.boundaryLogBatches(), client.sessionId).length >= 500, "all logs");
      assert.equal(fs.existsSync(path.join(agentd.dataDir, SPOOL_DB_FILE)), false);
      assert.equal(loadedSqlite(agentd.proc.pid!), false);
    } finally {
      await agentd.stop();
      await peer.close();
    }
  });
});

describe("upstream away during a steady stream", () => {
  test("in-process: every log arrives once the upstream answers again, in order", async () => {
    const h = await startProxy();
    const client = new AuditClient({ socketPath: h.socketPath, flushIntervalMs: 20 });
    try {
      const total = 3000;
      const sending = stream(client, total);
      await waitUntil(() => h.upstream.logCount() > 300, "the stream flowing");
      h.upstream.mode = "unavailable";
      await waitUntil(() => h.upstream.calls > h.upstream.received.length + 5, "failed forwards");
      await new Promise((r) => setTimeout(r, 300));
      h.upstream.mode = "ok";
      await sending;
      await client.close();
      await waitUntil(() => h.upstream.logCount() >= total, "every log delivered");
      assert.deepEqual(sequence(h.upstream.received, client.sessionId), range(total));
    } finally {
      await h.close();
    }
  });

  test("coderd peer goes away and comes back on the same port: none lost, order kept", async () => {
    const peer = await coderdPeer();
    const agentd = await startAgentd({ dir: scratch(), args: ["--coder-url", peer.url, "--token", "t"] });
    const client = new AuditClient({ socketPath: agentd.boundarySocket, flushIntervalMs: 20 });
    try {
      await waitUntil(() => peer.connections.size > 0, "agentd connected to the peer");
      const total = 2000;
      const sending = stream(client, total);
      const delivered = () => sequence(peer.store.boundaryLogBatches(), client.sessionId).length;
      await waitUntil(() => delivered() > 200, "the stream flowing");
      await peer.close();
      await waitUntil(async () => (await scrape(agentd.url, "agentd_boundary_spool_batches")) > 0, "batches spooled");
      await peer.start();
      await sending;
      await client.close();
      await waitUntil(() => new Set(sequence(peer.store.boundaryLogBatches(), client.sessionId)).size >= total, "all logs", 60_000);
      assert.deepEqual(firstArrivals(sequence(peer.store.boundaryLogBatches(), client.sessionId)), range(total));
      await waitUntil(async () => (await scrape(agentd.url, "agentd_boundary_spool_batches")) === 0, "spool drained");
    } finally {
      await agentd.stop();
    }
  });

  test("coderd peer fails calls on demand: the failed batches are re-sent, in order", async () => {
    const peer = await coderdPeer();
    const agentd = await startAgentd({ dir: scratch(), args: ["--coder-url", peer.url, "--token", "t"] });
    const client = new AuditClient({ socketPath: agentd.boundarySocket, flushIntervalMs: 20 });
    try {
      await waitUntil(() => peer.connections.size > 0, "agentd connected to the peer");
      peer.failNext("ReportBoundaryLogs", 5);
      await stream(client, 500);
      await client.close();
      await waitUntil(() => new Set(sequence(peer.store.boundaryLogBatches(), client.sessionId)).size >= 500, "all logs");
      assert.deepEqual(firstArrivals(sequence(peer.store.boundaryLogBatches(), client.sessionId)), range(500));
      assert.equal(await scrape(agentd.url, "agent_boundary_log_proxy_batches_dropped_total"), 0);
    } finally {
      await agentd.stop();
    }
  });
});

describe("agentd killed with SIGKILL mid-stream", () => {
  test("spooled logs are delivered after a restart on the same data dir", async () => {
    const peer = await coderdPeer();
    await peer.close();
    const dir = scratch();
    const args = ["--coder-url", peer.url, "--token", "t"];
    const first = await startAgentd({ dir, args });
    const spooled = new AuditClient({ socketPath: first.boundarySocket, flushIntervalMs: 20 });
    const streaming = new AuditClient({ socketPath: first.boundarySocket, flushIntervalMs: 20 });
    let streamDone: Promise<void> | undefined;
    let killed = false;
    try {
      await stream(spooled, 200);
      await spooled.close();
      await waitUntil(async () => (await scrape(first.url, "agentd_boundary_spool_batches")) >= 20, "200 logs in the spool");
      streamDone = stream(streaming, 100_000, () => killed);
      await waitUntil(async () => (await scrape(first.url, "agentd_boundary_spool_batches")) >= 40, "the stream spooling");
    } finally {
      assert.equal(await first.stop("SIGKILL"), null);
      killed = true;
    }
    await streaming.close();
    await peer.start();
    const second = await startAgentd({ dir, args });
    try {
      await waitUntil(
        () => sequence(peer.store.boundaryLogBatches(), spooled.sessionId).length >= 200,
        "the spooled logs delivered",
        60_000,
      );
      assert.deepEqual(firstArrivals(sequence(peer.store.boundaryLogBatches(), spooled.sessionId)), range(200));
      await waitUntil(async () => (await scrape(second.url, "agentd_boundary_spool_batches")) === 0, "spool drained", 60_000);
      assert.equal(fs.existsSync(path.join(dir, "data", SPOOL_DB_FILE)), false, "a drained spool leaves no file behind");
      const streamed = firstArrivals(sequence(peer.store.boundaryLogBatches(), streaming.sessionId));
      assert.ok(streamed.length > 0, "some of the interrupted stream was kept");
      assert.deepEqual(
        streamed,
        [...streamed].sort((a, b) => a - b),
        "the interrupted stream arrives in order",
      );
    } finally {
      await second.stop();
      await streamDone;
    }
  });
});

describe("hostile clients against the daemon", () => {
  test("garbage, half a frame and 10,000 connections: the daemon stays up, a well-behaved client is unaffected", async () => {
    const agentd = await startAgentd({ dir: scratch() });
    const good = new AuditClient({ socketPath: agentd.boundarySocket, flushIntervalMs: 20 });
    const sockets: net.Socket[] = [];
    try {
      await stream(good, 100);
      const garbage = await connect(agentd.boundarySocket);
      await write(garbage, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      await closed(garbage);
      const half = await connect(agentd.boundarySocket);
      await write(half, encodeLogsFrame(logsRequest("half", 50)).subarray(0, 200));

      const total = 10_000;
      let refused = 0;
      let failedConnects = 0;
      for (let opened = 0; opened < total; opened += 500) {
        const batch = await Promise.allSettled(range(500).map(() => connect(agentd.boundarySocket)));
        for (const r of batch) {
          if (r.status === "fulfilled") {
            sockets.push(r.value);
            r.value.once("close", () => refused++);
          } else {
            refused++;
            failedConnects++;
          }
        }
        await stream(good, 20);
      }
      await waitUntil(() => refused >= total - MAX_CONNECTIONS, "connections past the cap closed");
      // A connect can also fail before the daemon sees it, when the listen backlog is full.
      assert.ok(
        (await scrape(agentd.url, "agentd_boundary_connections_refused_total")) + failedConnects >= total - MAX_CONNECTIONS,
        "refusals counted",
      );
      assert.equal((await fetch(`${agentd.url}/healthz`)).status, 200);
      sockets.forEach((s) => s.destroy());
      half.destroy();
      await waitUntil(async () => (await scrape(agentd.url, "agentd_boundary_connections")) <= 1, "connections closed");
      await stream(good, 80);
      await good.close();
      const sent = 100 + (total / 500) * 20 + 80;
      await waitUntil(
        () => sequence(embeddedBatches(agentd), good.sessionId).length >= sent,
        "every log of the good client",
      );
      assert.deepEqual(sequence(embeddedBatches(agentd), good.sessionId), range(sent));
      assert.equal(
        embeddedBatches(agentd).filter((b) => b.sessionId !== good.sessionId).length,
        0,
        "the half frame was never forwarded",
      );
      assert.equal((await fetch(`${agentd.url}/readyz`)).status, 200);
      const metrics = await (await fetch(`${agentd.url}/metrics`)).text();
      assert.match(metrics, /^agent_boundary_log_proxy_batches_forwarded_total \d+$/m);
      if (hasPromtool()) execFileSync("promtool", ["check", "metrics"], { input: metrics });
    } finally {
      sockets.forEach((s) => s.destroy());
      assert.equal(await agentd.stop(), 0);
    }
    assert.equal(fs.existsSync(agentd.boundarySocket), false, "socket file removed on shutdown");
  });
});

describe("boundary socket start-up failure", () => {
  test("a missing socket directory is one clear log line; the daemon runs and /readyz reports it", async () => {
    const dir = scratch();
    const agentd = await startAgentd({ dir, args: ["--boundary-socket", `${dir}/missing/boundary.sock`] });
    try {
      const line = await agentd.waitForLog((l) => l.component === "boundary" && l.level === 50);
      assert.match(String(line.msg), /boundary log proxy failed to start/);
      assert.match(String(line.err), /missing.*does not exist/);
      assert.equal((await fetch(`${agentd.url}/healthz`)).status, 200);
      const ready = await fetch(`${agentd.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /"boundary":false/);
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });
});
