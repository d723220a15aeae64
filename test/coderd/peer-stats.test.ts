import assert from "node:assert/strict";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Agent } from "../../gen/coder/agent/v2/agent_pb.js";
import { BoundaryLogStats } from "../../src/coderd/peer-stats.js";
import { DrpcServer } from "../../src/drpc/server.js";
import { createDrpcTransport } from "../../src/drpc/transport.js";
import { decodeError, encodePackets, Kind, PacketReader, type Packet } from "../../src/drpc/wire.js";
import { tempDir } from "../helpers/agentd.js";
import { dialUnix } from "../drpc/sockets.js";

/** Writes `bytes` on a fresh connection and resolves with the first whole packet read back. */
async function firstPacket(socketPath: string, bytes: Buffer): Promise<Packet> {
  const conn = await dialUnix(socketPath);
  const reader = new PacketReader();
  try {
    return await new Promise<Packet>((resolve, reject) => {
      conn.on("data", (chunk: Buffer) => {
        const [packet] = reader.push(chunk);
        if (packet) resolve(packet);
      });
      conn.once("close", () => reject(new Error("closed before a reply")));
      conn.write(bytes);
    });
  } finally {
    conn.destroy();
  }
}

const NAME = "/coder.agent.v2.Agent/ReportBoundaryLogs";

describe("the benchmark peer's boundary log stats over dRPC", () => {
  const stats = new BoundaryLogStats();
  let socketPath: string;
  let server: net.Server;

  before(async () => {
    socketPath = path.join(tempDir(), "stats.sock");
    const drpc = new DrpcServer();
    drpc.register(Agent, stats.service(), stats.decoders());
    server = net.createServer((c) => void drpc.serve(c));
    await new Promise<void>((r) => server.listen(socketPath, r));
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test("counts every log and how late each log with a time arrived", async () => {
    stats.take();
    const client = createClient(Agent, createDrpcTransport({ dial: () => dialUnix(socketPath) }));
    const sent = Date.now();
    await client.reportBoundaryLogs({
      sessionId: "s",
      logs: [
        { allowed: true, time: timestampFromMs(sent - 3_000), sequenceNumber: 1, resource: { case: "httpRequest", value: { method: "GET", url: "https://example.com/a" } } },
        { allowed: false, sequenceNumber: 2 },
        { time: timestampFromMs(sent - 60_000) },
      ],
    });
    await client.reportBoundaryLogs({ logs: [{ time: timestampFromMs(sent - 3_000) }] });
    const second = stats.take();
    const elapsed = Date.now() - sent;
    assert.equal(second.logs, 4);
    assert.equal(second.calls, 2);
    const late = Object.entries(second.latencyMs).flatMap(([ms, n]) => Array<number>(n).fill(Number(ms)));
    assert.equal(late.length, 3, "the untimed log has no latency");
    late.sort((a, b) => a - b);
    for (const [i, want] of [3_000, 3_000, 60_000].entries()) assert.ok(late[i]! >= want && late[i]! <= want + elapsed + 1, `latency ${late[i]} for a log ${want} ms old`);
    assert.ok(second.busy >= 0 && second.busy <= 1, `busy share ${second.busy}`);
    assert.equal(stats.take().logs, 0, "take starts counting afresh");
  });

  test("tells how busy its event loop was since the last take", async () => {
    stats.take();
    const until = Date.now() + 60;
    while (Date.now() < until);
    await new Promise((r) => setTimeout(r, 60));
    const { busy } = stats.take();
    // About half: 60 ms of work, then 60 ms of waiting; generous bounds for a slow machine.
    assert.ok(busy > 0.2 && busy < 0.95, `busy share ${busy}`);
  });

  test("refuses request bytes that are not a ReportBoundaryLogsRequest and counts nothing of them", async () => {
    stats.take();
    // A `logs` field whose length runs past the end of the request.
    const invoke = encodePackets([
      { kind: Kind.Invoke, streamId: 1, messageId: 1, data: Buffer.from(NAME) },
      { kind: Kind.Message, streamId: 1, messageId: 2, data: Buffer.from([0x0a, 0x05, 0x08]) },
      { kind: Kind.CloseSend, streamId: 1, messageId: 3, data: new Uint8Array(0) },
    ]);
    const reply = await firstPacket(socketPath, invoke);
    assert.equal(reply.kind, Kind.Error, "the call fails");
    assert.deepEqual(decodeError(reply.data), { code: 0, message: "premature EOF" });
    assert.equal(stats.take().logs, 0);
  });
});
