import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createRouterTransport } from "@connectrpc/connect";
import { BoundaryLogService } from "../../gen/agentd/boundary/v1/boundary_pb.js";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { encodeLogsFrame } from "../../src/boundary/codec.js";
import { BoundaryLogRing, DEFAULT_LOG_RING_CAPACITY } from "../../src/boundary/log-ring.js";
import { boundaryLogService } from "../../src/boundary/log-service.js";
import { connect, waitUntil, withProxy, write } from "./harness.js";

function batch(urls: string[], allowed = true, process = "ai-agent") {
  return {
    sessionId: "s-1",
    confinedProcessName: process,
    logs: urls.map((url, i) => ({
      allowed,
      time: timestampFromMs(1_700_000_000_000 + i),
      resource: { case: "httpRequest" as const, value: { method: "GET", url, matchedRule: allowed ? "domain=x" : "" } },
      sequenceNumber: i,
    })),
  };
}

function bytes(urls: string[], allowed = true): Uint8Array {
  return toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, batch(urls, allowed)));
}

describe("boundary log ring", () => {
  it("keeps 10,000 logs by default", () => {
    assert.equal(new BoundaryLogRing().capacity, DEFAULT_LOG_RING_CAPACITY);
    assert.equal(DEFAULT_LOG_RING_CAPACITY, 10_000);
  });

  it("decodes a batch's logs on read, flattened with the batch's process, session and receive time", () => {
    const ring = new BoundaryLogRing(100);
    ring.push(bytes(["https://a.example/x", "https://b.example/y"]), 2, 42);
    const { logs, skipped, cursor } = ring.read(0);
    assert.equal(skipped, 0);
    assert.equal(cursor, 2);
    assert.deepEqual(
      logs.map((l) => [l.url, l.method, l.allowed, l.matchedRule, l.confinedProcessName, l.sessionId, l.receivedUnixMs, l.timeUnixMs]),
      [
        ["https://a.example/x", "GET", true, "domain=x", "ai-agent", "s-1", 42n, 1_700_000_000_000n],
        ["https://b.example/y", "GET", true, "domain=x", "ai-agent", "s-1", 42n, 1_700_000_000_001n],
      ],
    );
  });

  it("drops the oldest batches past its capacity and tells a reader how many it missed", () => {
    const ring = new BoundaryLogRing(25);
    for (let i = 0; i < 10; i++) ring.push(bytes(Array.from({ length: 10 }, (_, j) => `https://h/${i}/${j}`)), 10, i);
    assert.ok(ring.size <= 25 && ring.size >= 20, `retained ${ring.size}`);
    const read = ring.read(0);
    assert.equal(read.skipped, 100 - ring.size);
    assert.equal(read.logs.length, ring.size);
    assert.equal(read.logs.at(-1)!.url, "https://h/9/9");
    assert.equal(ring.read(read.cursor).logs.length, 0);
  });

  it("reads only what arrived after a cursor, and a backlog cursor covers the most recent logs", () => {
    const ring = new BoundaryLogRing(1000);
    ring.push(bytes(["https://old/1"]), 1, 1);
    const cursor = ring.end;
    ring.push(bytes(["https://new/1", "https://new/2"]), 2, 2);
    assert.deepEqual(
      ring.read(cursor).logs.map((l) => l.url),
      ["https://new/1", "https://new/2"],
    );
    assert.equal(ring.read(ring.cursorForBacklog(2)).logs.length, 2);
    assert.equal(ring.read(ring.cursorForBacklog(0)).logs.length, 0);
  });

  it("skips a batch whose bytes do not decode instead of failing the read", () => {
    const ring = new BoundaryLogRing(10);
    ring.push(new Uint8Array([0xff, 0xff, 0xff]), 1, 1);
    ring.push(bytes(["https://ok/"]), 1, 2);
    assert.deepEqual(
      ring.read(0).logs.map((l) => l.url),
      ["https://ok/"],
    );
  });

  it("refuses a capacity that is not a positive integer", () => {
    assert.throws(() => new BoundaryLogRing(0), RangeError);
  });
});

describe("BoundaryLogService.StreamLogs", () => {
  it("sends the requested backlog, then logs as they arrive", async () => {
    const ring = new BoundaryLogRing(100);
    ring.push(bytes(["https://backlog/1", "https://backlog/2"]), 2, 1);
    const client = createClient(
      BoundaryLogService,
      createRouterTransport((router) => router.service(BoundaryLogService, boundaryLogService(ring))),
    );
    const abort = new AbortController();
    const urls: string[] = [];
    const stream = client.streamLogs({ backlog: 1 }, { signal: abort.signal });
    setTimeout(() => ring.push(bytes(["https://live/1"], false), 1, 2), 50);
    try {
      for await (const msg of stream) {
        assert.equal(msg.capacity, 100);
        urls.push(...msg.logs.map((l) => l.url));
        if (urls.length >= 2) break;
      }
    } finally {
      abort.abort();
    }
    assert.deepEqual(urls, ["https://backlog/2", "https://live/1"]);
  });
});

describe("boundary proxy feeds the ring", () => {
  it("keeps received logs for the dashboard even while the upstream refuses them", async () => {
    await withProxy({ spool: false }, async (h) => {
      h.upstream.mode = "unavailable";
      const sock = await connect(h.socketPath);
      await write(sock, encodeLogsFrame(batch(["https://denied.example/", "https://other.example/"], false, "agent")));
      await waitUntil(() => h.proxy.logRing.size === 2, "logs in the ring");
      sock.destroy();
      const { logs } = h.proxy.logRing.read(0);
      assert.deepEqual(
        logs.map((l) => [l.url, l.allowed, l.confinedProcessName]),
        [
          ["https://denied.example/", false, "agent"],
          ["https://other.example/", false, "agent"],
        ],
      );
    });
  });
});
