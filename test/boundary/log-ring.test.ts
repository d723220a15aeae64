import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createRouterTransport } from "@connectrpc/connect";
import fc from "fast-check";
import { BoundaryLogService } from "../../gen/agentd/boundary/v1/boundary_pb.js";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { encodeLogsFrame } from "../../src/boundary/codec.js";
import { BoundaryLogRing, DEFAULT_LOG_RING_CAPACITY, RING_BYTES_PER_LOG } from "../../src/boundary/log-ring.js";
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

/** A batch of `count` logs whose URLs are their log indexes from `first` on, each padded by `pad` bytes. */
function indexed(first: number, count: number, pad = 0): Uint8Array {
  return bytes(Array.from({ length: count }, (_, i) => `https://h/${first + i}${pad > 0 ? "?" + "p".repeat(pad) : ""}`));
}

/** The log indexes a read returned. */
function indexes(read: { logs: { url: string }[] }): number[] {
  return read.logs.map((l) => Number(new URL(l.url).pathname.slice(1)));
}

describe("boundary log ring storage", () => {
  it("returns exactly the last logs in order, with skipped and cursors, far past its capacity", () => {
    // Reference: the pushed batches' log counts; the oldest dropped while the logs exceed the capacity.
    const step = fc.oneof(
      fc.record({ push: fc.integer({ min: 1, max: 12 }) }),
      fc.record({ read: fc.integer({ min: 0, max: 80 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.array(step, { minLength: 100, maxLength: 400 }), (capacity, steps) => {
        const ring = new BoundaryLogRing(capacity);
        const kept: number[] = [];
        let retained = 0;
        let total = 0;
        for (const s of steps) {
          if ("push" in s) {
            while (kept.length > 0 && retained + s.push > capacity) retained -= kept.shift()!;
            ring.push(indexed(total, s.push), s.push, total);
            kept.push(s.push);
            retained += s.push;
            total += s.push;
            continue;
          }
          const cursor = Math.max(0, total - s.read);
          const oldest = total - retained;
          const read = ring.read(cursor);
          assert.deepEqual(
            indexes(read),
            Array.from({ length: total - Math.max(cursor, oldest) }, (_, i) => Math.max(cursor, oldest) + i),
          );
          assert.equal(read.skipped, Math.max(0, oldest - cursor));
          assert.equal(read.cursor, total);
        }
        assert.equal(ring.size, retained);
        assert.equal(ring.end, total);
      }),
      { numRuns: 100 },
    );
  });

  it("holds at most capacity * RING_BYTES_PER_LOG bytes of large batches and still decodes them", () => {
    const capacity = 1000;
    const ring = new BoundaryLogRing(capacity);
    const pad = 30 * 1024;
    for (let i = 0; i < 100; i++) {
      ring.push(indexed(i, 1, pad), 1, i);
      const read = ring.read(0);
      const got = indexes(read);
      assert.ok(ring.size * pad <= capacity * RING_BYTES_PER_LOG, `${ring.size} logs of ${pad} bytes retained`);
      assert.ok(ring.size >= 1 && ring.size < capacity);
      assert.deepEqual(got, Array.from({ length: ring.size }, (_, j) => i + 1 - ring.size + j));
      assert.equal(read.skipped, i + 1 - ring.size);
      assert.ok(read.logs.every((l) => l.url.length > pad && BigInt(indexes({ logs: [l] })[0]!) === l.receivedUnixMs));
    }
    // Pages plus the first metadata slots.
    assert.ok(ring.retainedBytes <= capacity * RING_BYTES_PER_LOG + 8 * 1024, `${ring.retainedBytes} bytes held`);
  });

  it("copies the pushed bytes: changing the caller's buffer afterwards changes nothing read", () => {
    const ring = new BoundaryLogRing(10);
    const chunk = new Uint8Array(4096);
    const encoded = indexed(0, 3);
    chunk.set(encoded, 100);
    ring.push(chunk.subarray(100, 100 + encoded.length), 3, 1);
    chunk.fill(0xff);
    assert.deepEqual(indexes(ring.read(0)), [0, 1, 2]);
  });

  it("holds nothing before the first push, then grows its storage to a bound it keeps", () => {
    const capacity = 10_000;
    const ring = new BoundaryLogRing(capacity);
    assert.equal(ring.retainedBytes, 0);
    ring.push(indexed(0, 1), 1, 0);
    const first = ring.retainedBytes;
    assert.ok(first > 0 && first <= 128 * 1024, `${first} bytes after one push`);
    let total = 1;
    const push = (n: number): void => {
      for (const end = total + n; total < end; total++) ring.push(indexed(total, 1), 1, total);
    };
    push(2 * capacity);
    const grown = ring.retainedBytes;
    assert.ok(grown > first);
    push(5 * capacity);
    assert.equal(ring.retainedBytes, grown);
    // Pages within the byte bound, plus a few dozen bytes of metadata a batch.
    assert.ok(grown <= capacity * RING_BYTES_PER_LOG + capacity * 32, `${grown} bytes held`);
    assert.deepEqual(indexes(ring.read(total - 2)), [total - 2, total - 1]);
  });

  it("counts a batch larger than a page as missed, along with the logs before it", () => {
    const ring = new BoundaryLogRing(1000);
    ring.push(indexed(0, 2), 2, 0);
    ring.push(new Uint8Array(128 * 1024), 5, 1);
    ring.push(indexed(7, 1), 1, 2);
    const read = ring.read(0);
    assert.deepEqual(indexes(read), [7]);
    assert.equal(read.skipped, 7);
  });

  it("stops calling a listener once it unsubscribes", () => {
    const ring = new BoundaryLogRing(10);
    let calls = 0;
    const unsubscribe = ring.subscribe(() => calls++);
    ring.push(indexed(0, 1), 1, 0);
    unsubscribe();
    ring.push(indexed(1, 1), 1, 1);
    assert.equal(calls, 1);
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
