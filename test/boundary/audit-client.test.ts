import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { AuditClient, AUDIT_BATCH_SIZE } from "../../src/boundary/audit-client.js";
import { decodeFrameMessage, FrameDecoder, type BoundaryFrameMessage } from "../../src/boundary/codec.js";
import { tempDir } from "../helpers/agentd.js";
import { metric, startProxy, waitUntil } from "./harness.js";

const dir = tempDir("agentd-audit-");
const sinks = new Set<Sink>();
after(async () => {
  await Promise.all([...sinks].map((s) => s.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});
let socketCount = 0;

/** A unix socket server that decodes and keeps every message it is sent. */
class Sink {
  readonly messages: BoundaryFrameMessage[] = [];
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly socketPath = path.join(dir, `sink-${socketCount++}.sock`)) {
    sinks.add(this);
  }

  async listen(): Promise<this> {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      const decoder = new FrameDecoder();
      socket.on("data", (chunk: Buffer) => {
        decoder.push(chunk);
        for (let f = decoder.next(); f; f = decoder.next()) this.messages.push(decodeFrameMessage(f));
      });
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(this.socketPath, resolve));
    return this;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  logs() {
    return this.messages.flatMap((m) => (m.kind === "logs" ? [fromBinary(ReportBoundaryLogsRequestSchema, m.batch.bytes)] : []));
  }

  statuses() {
    return this.messages.flatMap((m) => (m.kind === "status" ? [m.status] : []));
  }
}

const deny = (url: string) => ({ allowed: false, method: "GET", url });

describe("audit client batching", () => {
  test("FlushesOnBatchSize: ten logs make one TagV2 logs frame carrying the session id", async () => {
    const sink = await new Sink().listen();
    const client = new AuditClient({ socketPath: sink.socketPath, flushIntervalMs: 60_000 });
    try {
      for (let i = 0; i < AUDIT_BATCH_SIZE; i++) {
        await client.room();
        client.audit(deny(`https://x/${i}`));
      }
      await waitUntil(() => sink.logs().length === 1, "one frame");
      const [batch] = sink.logs();
      assert.equal(batch!.logs.length, AUDIT_BATCH_SIZE);
      assert.equal(batch!.sessionId, client.sessionId);
      assert.match(batch!.sessionId, /^[0-9a-f-]{36}$/);
      assert.equal(batch!.confinedProcessName, "");
    } finally {
      await client.close();
      await sink.close();
    }
  });

  test("FlushesOnTimer: a partial batch goes out after the flush interval", async () => {
    const sink = await new Sink().listen();
    const client = new AuditClient({ socketPath: sink.socketPath, flushIntervalMs: 50 });
    try {
      client.audit(deny("https://x/1"));
      client.audit(deny("https://x/2"));
      await waitUntil(() => sink.logs().length === 1, "a timer flush");
      assert.equal(sink.logs()[0]!.logs.length, 2);
    } finally {
      await client.close();
      await sink.close();
    }
  });

  test("FlushesOnContextCancel: close drains the channel and flushes the last batch", async () => {
    const sink = await new Sink().listen();
    const client = new AuditClient({ socketPath: sink.socketPath, flushIntervalMs: 60_000 });
    client.audit(deny("https://x/1"));
    client.audit(deny("https://x/2"));
    client.audit(deny("https://x/3"));
    await client.close();
    await waitUntil(() => sink.logs().length === 1, "the shutdown flush");
    assert.equal(sink.logs()[0]!.logs.length, 3);
    await sink.close();
  });

  test("Flush_EmptyBatch: closing with nothing queued writes nothing", async () => {
    const sink = await new Sink().listen();
    const client = new AuditClient({ socketPath: sink.socketPath });
    await client.close();
    assert.equal(sink.messages.length, 0);
    await sink.close();
  });

  test("AllowIncludesRule and SequenceNumberIncrements", async () => {
    const sink = await new Sink().listen();
    const client = new AuditClient({ socketPath: sink.socketPath, flushIntervalMs: 60_000 });
    client.audit({ allowed: true, method: "GET", url: "https://ok", matchedRule: "domain=ok" });
    client.audit({ allowed: false, method: "GET", url: "https://no", matchedRule: "ignored" });
    await client.close();
    await waitUntil(() => sink.logs().length === 1, "the flush");
    const [allowed, denied] = sink.logs()[0]!.logs;
    assert.equal(allowed!.resource.value?.matchedRule, "domain=ok");
    assert.equal(denied!.resource.value?.matchedRule, "");
    assert.deepEqual([allowed!.sequenceNumber, denied!.sequenceNumber], [0, 1]);
    await sink.close();
  });
});

describe("audit client drops and retries", () => {
  test("DropsWhenFull and ReportsChannelFullDrops: overflow is counted and sent as a status frame", async () => {
    const sink = await new Sink().listen();
    const client = new AuditClient({ socketPath: sink.socketPath, flushIntervalMs: 60_000 });
    for (let i = 0; i < 100; i++) client.audit(deny(`https://x/${i}`));
    await client.close();
    await waitUntil(() => sink.statuses().length === 1, "a status frame");
    const delivered = sink.logs().reduce((n, r) => n + r.logs.length, 0);
    const status = sink.statuses()[0]!;
    assert.equal(delivered + Number(status.droppedChannelFull), 100);
    assert.ok(status.droppedChannelFull > 0n);
    const at = sink.messages.findIndex((m) => m.kind === "status");
    assert.equal(sink.messages[at - 1]?.kind, "logs", "status follows a successful logs flush");
    await sink.close();
  });

  test("RetriesOnConnectionFailure and ReportsBatchFullDrops: the batch is kept until the socket appears", async () => {
    const sink = new Sink();
    const client = new AuditClient({ socketPath: sink.socketPath, flushIntervalMs: 30 });
    try {
      for (let i = 0; i < AUDIT_BATCH_SIZE + 5; i++) {
        await client.room();
        client.audit(deny(`https://x/${i}`));
      }
      await waitUntil(() => client.pendingDrops.batchFull === 5, "batch-full drops while the socket is missing");
      await sink.listen();
      await waitUntil(() => sink.statuses().length === 1, "logs then status after redial");
      assert.equal(sink.logs()[0]!.logs.length, AUDIT_BATCH_SIZE);
      assert.equal(sink.statuses()[0]!.droppedBatchFull, 5n);
      assert.deepEqual(client.pendingDrops, { channelFull: 0, batchFull: 0 });
    } finally {
      await client.close();
      await sink.close();
    }
  });

  test("redials after the proxy restarts on the same path", async () => {
    let sink = await new Sink().listen();
    const client = new AuditClient({ socketPath: sink.socketPath, flushIntervalMs: 30 });
    try {
      client.audit(deny("https://x/before"));
      await waitUntil(() => sink.logs().length === 1, "first flush");
      await sink.close();
      fs.rmSync(sink.socketPath, { force: true });
      sink = await new Sink(sink.socketPath).listen();
      for (let i = 0; i < 3; i++) {
        client.audit(deny(`https://x/after-${i}`));
        await new Promise((r) => setTimeout(r, 60));
      }
      await waitUntil(() => sink.logs().length > 0, "a flush to the new server");
    } finally {
      await client.close();
      await sink.close();
    }
  });
});

describe("audit client through the proxy", () => {
  test("logs reach the upstream and status frames land in the drop metrics", async () => {
    const h = await startProxy();
    const client = new AuditClient({ socketPath: h.socketPath, flushIntervalMs: 60_000 });
    try {
      for (let i = 0; i < 100; i++) client.audit(deny(`https://x/${i}`));
      await client.close();
      await waitUntil(
        async () =>
          (await metric(h.registry, "agent_boundary_log_proxy_logs_dropped_total", { reason: "boundary_channel_full" })) > 0,
        "boundary_channel_full counted",
      );
      const dropped = await metric(h.registry, "agent_boundary_log_proxy_logs_dropped_total", {
        reason: "boundary_channel_full",
      });
      await waitUntil(() => h.upstream.logCount() + dropped === 100, "every log forwarded or counted");
      assert.ok(h.upstream.received.every((r) => r.sessionId === client.sessionId));
    } finally {
      await h.close();
    }
  });
});
