import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { encodeFrame, encodeLogsFrame, encodeStatusFrame, TAG_V1, TAG_V2 } from "../../src/boundary/codec.js";
import { LANE_PAUSE_BYTES } from "../../src/boundary/forwarder.js";
import { BoundaryProxy } from "../../src/boundary/proxy.js";
import { tempDir } from "../helpers/agentd.js";
import {
  closed,
  connect,
  FakeUpstream,
  logsRequest,
  metric,
  silentLog,
  startProxy,
  withProxy,
  waitUntil,
  write,
  hasPromtool,
} from "./harness.js";
import { Registry } from "prom-client";

/** A socket file whose server died without removing it (a process killed while listening). */
function leaveStaleSocket(socketPath: string): void {
  const listenThenDie = `require("net").createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, "SIGKILL"))`;
  try {
    execFileSync(process.execPath, ["-e", listenThenDie]);
  } catch {
    // Killed by its own SIGKILL, as intended.
  }
}

const urls = (upstream: FakeUpstream) =>
  upstream.received.map((r) => r.logs.map((l) => (l.resource.case === "httpRequest" ? l.resource.value.url : "")));

describe("StartAndClose", () => {
  test("listens on the socket path and removes the file on stop", async () => {
    const h = await startProxy();
    try {
      assert.ok(h.proxy.ready());
      assert.ok(fs.statSync(h.socketPath).isSocket());
      await h.proxy.stop();
      assert.equal(fs.existsSync(h.socketPath), false);
      assert.equal(h.proxy.ready(), false);
    } finally {
      fs.rmSync(h.dir, { recursive: true, force: true });
    }
  });

  test("replaces a stale socket file left by a previous run", async () => {
    const dir = tempDir("agentd-boundary-");
    leaveStaleSocket(path.join(dir, "boundary.sock"));
    const h = await startProxy({ dir });
    try {
      assert.ok(fs.statSync(h.socketPath).isSocket());
    } finally {
      await h.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a socket directory that does not exist is reported, not thrown", async () => {
    const dir = tempDir("agentd-boundary-");
    const proxy = new BoundaryProxy({
      socketPath: path.join(dir, "missing", "boundary.sock"),
      dataDir: dir,
      registry: new Registry(),
      log: silentLog,
      client: new FakeUpstream(),
      spoolMaxBytes: 1 << 20,
    });
    try {
      await proxy.start();
      assert.equal(proxy.ready(), false);
      assert.match(proxy.failure ?? "", /does not exist/);
    } finally {
      await proxy.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("ReceiveAndForwardLogs", () => {
  test("forwards a batch with every field intact", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      await write(
        socket,
        encodeLogsFrame({
          sessionId: "0b5a2c1e-5a4e-4c1b-9a57-3f1f2b3c4d5e",
          confinedProcessName: "ai-agent",
          logs: [
            {
              allowed: false,
              time: timestampFromMs(1_700_000_000_123),
              sequenceNumber: 7,
              resource: { case: "httpRequest", value: { method: "POST", url: "https://evil.example/x" } },
            },
          ],
        }),
      );
      await waitUntil(() => h.upstream.received.length === 1, "one forwarded batch");
      const got = h.upstream.received[0]!;
      assert.equal(got.sessionId, "0b5a2c1e-5a4e-4c1b-9a57-3f1f2b3c4d5e");
      assert.equal(got.confinedProcessName, "ai-agent");
      assert.equal(got.logs.length, 1);
      const log = got.logs[0]!;
      assert.equal(log.allowed, false);
      assert.equal(log.sequenceNumber, 7);
      assert.equal(log.time?.seconds, 1_700_000_000n);
      assert.equal(log.time?.nanos, 123_000_000);
      assert.equal(log.resource.case, "httpRequest");
      assert.equal(log.resource.value?.method, "POST");
      assert.equal(log.resource.value?.url, "https://evil.example/x");
      socket.destroy();
    });
  });
});

describe("MultipleMessages", () => {
  test("five frames on one connection all arrive, in order (queued ones coalesced into one call)", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      for (let i = 0; i < 5; i++) await write(socket, encodeLogsFrame(logsRequest(`m${i}`)));
      await waitUntil(() => h.upstream.logCount() === 5, "five logs");
      assert.ok(h.upstream.received.length <= 5);
      assert.deepEqual(
        urls(h.upstream).flat(),
        [0, 1, 2, 3, 4].map((i) => `https://example.com/m${i}/0`),
      );
      socket.destroy();
    });
  });
});

describe("MultipleConnections", () => {
  test("three connections each forward their batch", async () => {
    await withProxy(async (h) => {
      const sockets = await Promise.all([0, 1, 2].map(() => connect(h.socketPath)));
      await Promise.all(sockets.map((s, i) => write(s, encodeLogsFrame(logsRequest(`c${i}`, 1, `session-${i}`)))));
      await waitUntil(() => h.upstream.received.length === 3, "three batches");
      assert.deepEqual(h.upstream.received.map((r) => r.sessionId).sort(), ["session-0", "session-1", "session-2"]);
      sockets.forEach((s) => s.destroy());
    });
  });
});

describe("MessageTooLarge", () => {
  test("closes the connection on a header announcing 32769 bytes", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      await write(socket, Buffer.from([TAG_V2, 0x00, 0x80, 0x01]));
      await closed(socket);
      assert.equal(h.upstream.calls, 0);
    });
  });
});

describe("InvalidHeader", () => {
  test("closes the connection on TagV1 with length 32769", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      await write(socket, Buffer.from([TAG_V1, 0x00, 0x80, 0x01]));
      await closed(socket);
    });
  });

  test("closes the connection on tag 0xFF", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      await write(socket, Buffer.from([0xff, 0x00, 0x00, 0x01, 0x00]));
      await closed(socket);
    });
  });
});

describe("InvalidProtobuf", () => {
  test("skips an undecodable body and keeps reading the connection", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      await write(socket, encodeFrame(TAG_V2, Buffer.from([0xff, 0xff, 0xff, 0xff])));
      await write(socket, encodeLogsFrame(logsRequest("after-garbage")));
      await waitUntil(() => h.upstream.received.length === 1, "the good batch");
      assert.equal(urls(h.upstream)[0]![0], "https://example.com/after-garbage/0");
      assert.equal(socket.destroyed, false);
      socket.destroy();
    });
  });
});

describe("AllowRequest", () => {
  test("keeps the timestamp and matched_rule of an allowed request", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      await write(
        socket,
        encodeLogsFrame({
          logs: [
            {
              allowed: true,
              time: timestampFromMs(1_234_567_890_000),
              resource: {
                case: "httpRequest",
                value: { method: "GET", url: "https://github.com/coder", matchedRule: "domain=github.com" },
              },
            },
          ],
        }),
      );
      await waitUntil(() => h.upstream.received.length === 1, "one batch");
      const log = h.upstream.received[0]!.logs[0]!;
      assert.equal(log.allowed, true);
      assert.equal(log.time?.seconds, 1_234_567_890n);
      assert.equal(log.resource.value?.matchedRule, "domain=github.com");
      socket.destroy();
    });
  });
});

describe("TagV1BackwardsCompatibility", () => {
  test("a TagV1 then a TagV2 frame on one connection are both forwarded in order", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      await write(socket, Buffer.concat([encodeLogsFrame(logsRequest("v1"), TAG_V1), encodeLogsFrame(logsRequest("v2"))]));
      await waitUntil(() => h.upstream.logCount() === 2, "two logs");
      assert.deepEqual(
        urls(h.upstream).flat(),
        ["https://example.com/v1/0", "https://example.com/v2/0"],
      );
      socket.destroy();
    });
  });
});

describe("ForwarderContinuesAfterError", () => {
  test("a batch the upstream rejects is counted forward_failed and later batches still go out", async () => {
    await withProxy(async (h) => {
      h.upstream.mode = "invalid";
      const socket = await connect(h.socketPath);
      await write(socket, encodeLogsFrame(logsRequest("rejected", 2)));
      await waitUntil(() => h.upstream.calls === 1, "the rejected call");
      h.upstream.mode = "ok";
      await write(socket, encodeLogsFrame(logsRequest("accepted")));
      await waitUntil(() => h.upstream.received.length === 1, "the next batch");
      assert.equal(urls(h.upstream)[0]![0], "https://example.com/accepted/0");
      assert.equal(await metric(h.registry, "agent_boundary_log_proxy_batches_dropped_total", { reason: "forward_failed" }), 1);
      assert.equal(await metric(h.registry, "agent_boundary_log_proxy_logs_dropped_total", { reason: "forward_failed" }), 2);
      socket.destroy();
    });
  });

  test("without a spool a failed forward is dropped as forward_failed, as Coder's agent does", async () => {
    await withProxy({ spool: false }, async (h) => {
      h.upstream.failNext = 1;
      const socket = await connect(h.socketPath);
      await write(socket, encodeLogsFrame(logsRequest("lost", 2)));
      await waitUntil(() => h.upstream.calls === 1, "the failing call");
      await write(socket, encodeLogsFrame(logsRequest("kept")));
      await waitUntil(() => h.upstream.received.length === 1, "the second batch");
      assert.equal(urls(h.upstream)[0]![0], "https://example.com/kept/0");
      assert.equal(await metric(h.registry, "agent_boundary_log_proxy_logs_dropped_total", { reason: "forward_failed" }), 2);
      socket.destroy();
    });
  });
});

describe("CloseStopsForwarder", () => {
  test("stop returns while a forward hangs, and the hanging batch is kept in the spool", async () => {
    const h = await startProxy();
    try {
      h.upstream.mode = "hang";
      const socket = await connect(h.socketPath);
      await write(socket, encodeLogsFrame(logsRequest("stuck")));
      await waitUntil(() => h.upstream.calls === 1, "the hanging call");
      await h.proxy.stop();
      assert.equal(h.upstream.received.length, 0);
      const again = await startProxy({ dir: h.dir });
      try {
        await waitUntil(() => again.upstream.received.length === 1, "the spooled batch after restart");
        assert.equal(urls(again.upstream)[0]![0], "https://example.com/stuck/0");
      } finally {
        await again.close();
      }
    } finally {
      await h.close();
      fs.rmSync(h.dir, { recursive: true, force: true });
    }
  });
});

describe("Metrics", () => {
  for (const spool of [true, false]) {
    test(`Backpressure ${spool ? "with" : "without"} a spool: a connection whose queue is full is not read until coderd takes its batches; nothing is dropped`, async () => {
      await withProxy({ spool }, async (h) => {
        h.upstream.hold();
        const socket = await connect(h.socketPath);
        // Well over LANE_PAUSE_BYTES plus what the kernel's socket buffers hold.
        const frames = Array.from({ length: 400 }, (_, i) => encodeLogsFrame(logsRequest(`b${i}-${"x".repeat(200)}`, 10)));
        const bytes = Buffer.concat(frames);
        assert.ok(bytes.length > 4 * LANE_PAUSE_BYTES);
        let written = false;
        const writing = write(socket, bytes).then(() => (written = true));
        await waitUntil(() => h.upstream.calls >= 1, "a held call");
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(written, false, "the proxy stopped reading while coderd held its calls");
        h.upstream.release();
        await writing;
        await waitUntil(() => h.upstream.logCount() === 4000, "every log");
        assert.deepEqual(
          urls(h.upstream).flat().filter((_, i) => i % 10 === 0),
          Array.from({ length: 400 }, (_, i) => `https://example.com/b${i}-${"x".repeat(200)}/0`),
        );
        assert.equal(await metric(h.registry, "agent_boundary_log_proxy_logs_dropped_total", { reason: "buffer_full" }), 0);
        assert.equal(await metric(h.registry, "agentd_boundary_spool_batches"), 0);
        socket.destroy();
      });
    });
  }

  test("Forwarding: forwarded count, and status frames counted as boundary drops, never forwarded", async () => {
    await withProxy(async (h) => {
      const socket = await connect(h.socketPath);
      await write(socket, encodeLogsFrame(logsRequest("ok", 2)));
      await waitUntil(() => h.upstream.received.length === 1, "one batch");
      await write(socket, encodeStatusFrame({ droppedChannelFull: 5n, droppedBatchFull: 3n }));
      await write(socket, encodeStatusFrame({ droppedChannelFull: 0n, droppedBatchFull: 0n }));
      await write(socket, encodeLogsFrame(logsRequest("ok2")));
      await waitUntil(() => h.upstream.received.length === 2, "second batch");
      assert.equal(await metric(h.registry, "agent_boundary_log_proxy_batches_forwarded_total"), 2);
      assert.equal(
        await metric(h.registry, "agent_boundary_log_proxy_logs_dropped_total", { reason: "boundary_channel_full" }),
        5,
      );
      assert.equal(
        await metric(h.registry, "agent_boundary_log_proxy_logs_dropped_total", { reason: "boundary_batch_full" }),
        3,
      );
      assert.equal(h.upstream.calls, 2, "status frames are not forwarded");
      socket.destroy();
    });
  });

  test("SpoolFull: only what the full spool cannot hold is dropped, as spool_full", async () => {
    await withProxy({ spoolMaxBytes: 2000 }, async (h) => {
      h.upstream.mode = "unavailable";
      const socket = await connect(h.socketPath);
      const frames = Array.from({ length: 50 }, (_, i) => encodeLogsFrame(logsRequest(`s${i}`, 3)));
      await write(socket, Buffer.concat(frames));
      const dropped = () =>
        metric(h.registry, "agent_boundary_log_proxy_batches_dropped_total", { reason: "spool_full" });
      await waitUntil(async () => (await dropped()) > 0, "spool_full drops");
      const spooled = await metric(h.registry, "agentd_boundary_spool_batches");
      assert.ok(spooled > 0);
      assert.ok((await metric(h.registry, "agentd_boundary_spool_bytes")) <= 2000);
      await waitUntil(async () => spooled + (await dropped()) === 50, "every batch spooled or counted");
      assert.equal(
        await metric(h.registry, "agent_boundary_log_proxy_logs_dropped_total", { reason: "spool_full" }),
        3 * (await dropped()),
      );
      h.upstream.mode = "ok";
      await waitUntil(() => h.upstream.logCount() === 3 * spooled, "the spooled batches delivered");
      assert.deepEqual(
        urls(h.upstream)
          .flat()
          .filter((_, i) => i % 3 === 0),
        Array.from({ length: spooled }, (_, i) => `https://example.com/s${i}/0`),
        "the oldest batches were kept, in order",
      );
      socket.destroy();
    });
  });

  test("batch counters and the spool gauge count boundary's frames, however many one call joined", async () => {
    await withProxy(async (h) => {
      h.upstream.mode = "unavailable";
      const socket = await connect(h.socketPath);
      await write(socket, Buffer.concat(Array.from({ length: 40 }, (_, i) => encodeLogsFrame(logsRequest(`j${i}`, 2)))));
      await waitUntil(async () => (await metric(h.registry, "agentd_boundary_spool_batches")) === 40, "every frame spooled");
      h.upstream.mode = "ok";
      await waitUntil(() => h.upstream.logCount() === 80, "every log delivered");
      assert.ok(h.upstream.calls < 40, `${h.upstream.calls} calls carried 40 frames`);
      assert.equal(await metric(h.registry, "agent_boundary_log_proxy_batches_forwarded_total"), 40);
      assert.equal(await metric(h.registry, "agentd_boundary_spool_batches"), 0);
      socket.destroy();
    });
  });

  test("metrics output passes promtool check metrics", { skip: !hasPromtool() && "promtool not installed" }, async () => {
    await withProxy(async (h) => {
      h.proxy.metrics.dropBatch("spool_full", 2);
      const socket = await connect(h.socketPath);
      await write(socket, encodeStatusFrame({ droppedChannelFull: 1n, droppedBatchFull: 1n }));
      await write(socket, encodeLogsFrame(logsRequest("p")));
      await waitUntil(() => h.upstream.received.length === 1, "one batch");
      execFileSync("promtool", ["check", "metrics"], { input: await h.registry.metrics() });
      socket.destroy();
    });
  });

  test("uses Coder's metric names and help text byte for byte", async () => {
    await withProxy(async (h) => {
      const text = await h.registry.metrics();
      assert.ok(
        text.includes(
          "# HELP agent_boundary_log_proxy_batches_forwarded_total Total number of boundary log batches successfully forwarded to coderd. Compare with batches_dropped_total to compute a drop rate.\n# TYPE agent_boundary_log_proxy_batches_forwarded_total counter\n",
        ),
      );
      assert.ok(
        text.includes(
          "# HELP agent_boundary_log_proxy_batches_dropped_total Total number of boundary log batches dropped before reaching coderd. Reason: buffer_full = the agent's internal buffer is full, meaning boundary is producing logs faster than the agent can forward them to coderd; forward_failed = the agent failed to send the batch to coderd, potentially because coderd is unreachable or the connection was interrupted.\n",
        ),
      );
      assert.ok(
        text.includes(
          "# HELP agent_boundary_log_proxy_logs_dropped_total Total number of individual boundary log entries dropped before reaching coderd. Reason: buffer_full = the agent's internal buffer is full; forward_failed = the agent failed to send the batch to coderd; boundary_channel_full = boundary's internal send channel overflowed, meaning boundary is generating logs faster than it can batch and send them; boundary_batch_full = boundary's outgoing batch buffer overflowed after a failed flush, meaning boundary could not write to the agent's socket.\n",
        ),
      );
      for (const name of ["agentd_boundary_spool_batches", "agentd_boundary_spool_bytes", "agentd_boundary_spool_oldest_age_seconds"]) {
        assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, "m"));
      }
    });
  });
});
