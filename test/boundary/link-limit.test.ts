import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Registry } from "prom-client";
import type { ReportBoundaryLogsRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import { encodeLogsFrame, MAX_MESSAGE_SIZE } from "../../src/boundary/codec.js";
import { BoundaryProxy } from "../../src/boundary/proxy.js";
import { CoderdUpstream } from "../../src/coderd/coderd-upstream.js";
import { tempDir } from "../helpers/agentd.js";
import { coderdPeer, type CoderdPeer } from "../helpers/coderd-peer.js";
import { connect, logsRequest, metric, silentLog, waitUntil, write } from "./harness.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Go's websocket library's default read limit, which some coder releases kept on the agent RPC endpoint. */
const GO_DEFAULT_READ_LIMIT = 32 << 10;

interface Link {
  proxy: BoundaryProxy;
  upstream: CoderdUpstream;
  registry: Registry;
  socketPath: string;
  close(): Promise<void>;
}

/** The boundary proxy forwarding over a real WebSocket + yamux + dRPC link to `peer`, with short test backoffs. */
async function linkTo(peer: CoderdPeer): Promise<Link> {
  const dir = tempDir("agentd-link-limit-");
  dirs.push(dir);
  const registry = new Registry();
  const upstream = new CoderdUpstream({
    url: new URL(peer.url),
    token: "t",
    log: silentLog,
    registry,
    backoffInitialMs: 20,
    backoffMaxMs: 200,
  });
  await upstream.start();
  const socketPath = path.join(dir, "boundary.sock");
  const proxy = new BoundaryProxy({
    socketPath,
    dataDir: dir,
    registry,
    log: silentLog,
    client: upstream.client,
    spoolMaxBytes: 64 << 20,
    retryInitialMs: 10,
    retryMaxMs: 50,
  });
  await proxy.start();
  await waitUntil(() => upstream.isConnected(), "the link");
  return {
    proxy,
    upstream,
    registry,
    socketPath,
    async close() {
      await proxy.stop();
      await upstream.stop();
    },
  };
}

/** URLs of every log the peer received, in arrival order. */
function delivered(peer: CoderdPeer): string[] {
  return peer
    .callsOf("ReportBoundaryLogs")
    .flatMap((c) => (c.request as ReportBoundaryLogsRequest).logs)
    .map((l) => (l.resource.case === "httpRequest" ? l.resource.value.url : ""));
}

/** A one-log request whose URL pads it to `bytes` of frame payload or a little less. */
function paddedRequest(tag: string, bytes: number) {
  const request = logsRequest(tag, 1);
  const base = encodeLogsFrame(request).length - 4;
  const value = request.logs![0]!.resource!.value as { url: string };
  // Slack for the four length varints that grow by up to two bytes each.
  value.url += "x".repeat(bytes - base - 8);
  return request;
}

describe("a coderd that closes the link on a WebSocket message over its read limit", () => {
  test("with Go's 32 KiB default, boundary's largest frames are delivered and the link never drops", async () => {
    const peer = await coderdPeer({ readLimit: GO_DEFAULT_READ_LIMIT });
    const link = await linkTo(peer);
    try {
      const socket = await connect(link.socketPath);
      const frames = ["a", "b", "c"].map((t) => encodeLogsFrame(paddedRequest(t, MAX_MESSAGE_SIZE)));
      assert.ok(frames.every((f) => f.length - 4 > MAX_MESSAGE_SIZE - 16 && f.length - 4 <= MAX_MESSAGE_SIZE));
      await write(socket, Buffer.concat(frames));
      await waitUntil(() => delivered(peer).length === 3, "three largest frames");
      assert.deepEqual(
        delivered(peer).map((u) => u.slice(0, "https://example.com/a".length)),
        ["a", "b", "c"].map((t) => `https://example.com/${t}`),
      );
      assert.equal(peer.requests.length, 1, "one connection, never redialed");
      assert.equal(await metric(link.registry, "agentd_coderd_disconnects_total"), 0);
      socket.destroy();
    } finally {
      await link.close();
    }
  });

  test("a batch that keeps dropping the link is split; a log that never passes is dropped as undeliverable; the link then stays up", async () => {
    // A smaller limit than any call agentd makes for a whole batch here: only halves pass.
    const limit = 8 << 10;
    const peer = await coderdPeer({ readLimit: limit });
    const link = await linkTo(peer);
    try {
      const socket = await connect(link.socketPath);
      const big = logsRequest("big", 10);
      for (const log of big.logs!) (log.resource!.value as { url: string }).url += "y".repeat(1000);
      await write(socket, encodeLogsFrame(big));
      await waitUntil(() => delivered(peer).length === 10, "the ten logs, in pieces", 60_000);
      assert.deepEqual(
        delivered(peer).map((u) => u.slice(0, u.indexOf("y"))),
        Array.from({ length: 10 }, (_, i) => `https://example.com/big/${i}`),
      );

      const forwarded = () => metric(link.registry, "agent_boundary_log_proxy_batches_forwarded_total");
      await waitUntil(async () => (await forwarded()) === 1, "the split frame counted once, as forwarded");

      await write(socket, encodeLogsFrame(paddedRequest("huge", limit + 4096)));
      await waitUntil(
        async () => (await metric(link.registry, "agent_boundary_log_proxy_logs_dropped_total", { reason: "undeliverable" })) === 1,
        "the log that cannot pass dropped",
        60_000,
      );
      await waitUntil(() => link.upstream.isConnected(), "the link back");
      const dials = peer.requests.length;
      for (let i = 0; i < 3; i++) await write(socket, encodeLogsFrame(logsRequest(`after${i}`)));
      await waitUntil(() => delivered(peer).length === 13, "later batches");
      assert.deepEqual(delivered(peer).slice(10), [0, 1, 2].map((i) => `https://example.com/after${i}/0`));
      assert.equal(peer.requests.length, dials, "no more reconnects once the log was dropped");
      assert.equal(await metric(link.registry, "agent_boundary_log_proxy_batches_dropped_total", { reason: "undeliverable" }), 1);
      await waitUntil(async () => (await forwarded()) === 4, "every other frame counted as forwarded");
      assert.equal(await metric(link.registry, "agentd_boundary_spool_batches"), 0);
      socket.destroy();
    } finally {
      await link.close();
    }
  });
});
