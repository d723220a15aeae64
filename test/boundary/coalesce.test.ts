import assert from "node:assert/strict";
import { describe, test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { CallBuilder, cutCall, firstCall, MAX_CALL_BATCHES, MAX_CALL_BYTES } from "../../src/boundary/coalesce.js";
import { decodeLogBatch, decodeLogs, logBatchOf } from "../../src/boundary/log-batch.js";
import { logsRequest } from "./harness.js";

/** A batch as the socket reader hands it on: the bytes boundary sent, scanned. */
function received(tag: string, n = 10, sessionId = "session") {
  const bytes = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, logsRequest(tag, n, sessionId)));
  return decodeLogBatch(bytes);
}

describe("coalescing a connection's queued batches into one call", () => {
  test("the call's bytes are the batches' log bytes joined, then the session fields once, as Go would encode it", () => {
    const batches = [received("a"), received("b", 3), received("c", 1)];
    const { call, taken } = firstCall(batches);
    assert.equal(taken, 3);
    assert.equal(call.batches, 3);
    const { bytes } = call;
    const expected = create(ReportBoundaryLogsRequestSchema, {
      sessionId: "session",
      logs: batches.flatMap((b) => decodeLogs(b)),
    });
    assert.deepEqual(Buffer.from(bytes), Buffer.from(toBinary(ReportBoundaryLogsRequestSchema, expected)));
    assert.deepEqual(fromBinary(ReportBoundaryLogsRequestSchema, bytes), expected);
    assert.equal(call.logCount, 14);
    assert.equal(call.sessionId, "session");
  });

  test("only batches of the same session and confined process share a call, in order", () => {
    const batches = [received("a"), received("b"), received("c", 10, "other"), received("d")];
    assert.equal(firstCall(batches).taken, 2);
    assert.equal(firstCall(batches.slice(2)).taken, 1);
    const confined = logBatchOf(create(ReportBoundaryLogsRequestSchema, { ...logsRequest("e"), confinedProcessName: "ai-agent" }));
    assert.equal(firstCall([received("a"), confined]).taken, 1);
  });

  test("a call stays within 32 KiB; a single batch always goes, whatever its size", () => {
    const batches = Array.from({ length: 200 }, (_, i) => received(`p${i}`));
    const { call, taken: n } = firstCall(batches);
    assert.ok(n > 1 && call.bytes.length <= MAX_CALL_BYTES);
    // The next batch's logs would not have fitted.
    const tail = batches[0]!.bytes.length - batches[0]!.logsEnd;
    assert.ok(call.bytes.length + batches[n]!.logsEnd > MAX_CALL_BYTES, `${call.bytes.length} + ${batches[n]!.logsEnd}`);
    assert.equal(call.logsEnd, call.bytes.length - tail);
    const huge = received(`h${"x".repeat(40_000)}`, 1);
    const alone = firstCall([huge, received("a")]);
    assert.equal(alone.taken, 1);
    assert.equal(alone.call.bytes, huge.bytes);
  });

  test("a batch encoded in another field order is re-encoded, never mangled", () => {
    // session_id (field 2) before the logs: valid protobuf, not what Go writes.
    const odd = create(ReportBoundaryLogsRequestSchema, logsRequest("odd", 2));
    const logs = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { logs: odd.logs }));
    const session = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { sessionId: "session" }));
    const bytes = Buffer.concat([session, logs]);
    const batch = decodeLogBatch(bytes);
    const { call } = firstCall([received("a", 1), batch]);
    const decoded = fromBinary(ReportBoundaryLogsRequestSchema, call.bytes);
    assert.equal(decoded.sessionId, "session");
    assert.deepEqual(
      decoded.logs.map((l) => (l.resource.case === "httpRequest" ? l.resource.value.url : "")),
      ["https://example.com/a/0", "https://example.com/odd/0", "https://example.com/odd/1"],
    );
  });

  test("a call being built keeps no view of the bytes it was handed, and a lone call is copied only when kept", () => {
    const first = received("a");
    const second = received("b");
    const builder = new CallBuilder();
    assert.ok(builder.add(first) && builder.add(second));
    const expected = Buffer.from(firstCall([first, second]).call.bytes);
    first.bytes.fill(0);
    second.bytes.fill(0);
    const built = builder.take()!;
    assert.deepEqual(Buffer.from(built.bytes), expected);
    assert.ok(builder.empty);

    const lone = received("c");
    builder.add(lone);
    assert.equal(builder.take()!.bytes, lone.bytes, "a call sent at once is the batch as received");
    builder.add(lone);
    const kept = builder.take(true)!;
    assert.notEqual(kept.bytes.buffer, lone.bytes.buffer);
    assert.deepEqual(Buffer.from(kept.bytes), Buffer.from(lone.bytes));
  });

  test("a call waiting to be sent keeps no socket chunk alive: not once batches joined, not once a lone batch is owned", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    /** Adds `n` batches read as views of one 64 KiB chunk, as the socket reader hands them on; the chunk's buffer, weakly. */
    const readInto = (builder: CallBuilder, n: number): WeakRef<ArrayBuffer> => {
      const chunk = Buffer.alloc(64 << 10);
      let at = 0;
      for (let i = 0; i < n; i++) {
        const bytes = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, logsRequest(`r${i}`)));
        chunk.set(bytes, at);
        builder.add(decodeLogBatch(chunk.subarray(at, at + bytes.length)));
        at += bytes.length;
      }
      // The scanner holds the last bytes it walked until the next frame: walk another.
      received("next");
      return new WeakRef(chunk.buffer);
    };
    const collected = async (chunk: WeakRef<ArrayBuffer>) => {
      await new Promise((r) => setTimeout(r, 1));
      gc();
      return chunk.deref() === undefined;
    };
    const joined = new CallBuilder();
    assert.ok(await collected(readInto(joined, 2)), "a joined call holds the first batch's chunk");
    assert.equal(joined.take()!.logCount, 2);
    const lone = new CallBuilder();
    const chunk = readInto(lone, 1);
    lone.own();
    assert.ok(await collected(chunk), "an owned lone batch holds its chunk");
    assert.equal(fromBinary(ReportBoundaryLogsRequestSchema, lone.take()!.bytes).logs.length, 1);
  });

  test("a joined call closed early (another session followed) is kept in a buffer of about its size", () => {
    const builder = new CallBuilder();
    builder.add(received("a", 1));
    builder.add(received("b", 1));
    const kept = builder.take(true)!;
    const held = kept.bytes.buffer.byteLength;
    assert.ok(held < 4 * kept.bytes.length, `a call of ${kept.bytes.length} bytes holds ${held}`);
    // It can still be cut between its batches.
    const [a, b] = cutCall(kept, kept.bytes.length - 1)!;
    assert.deepEqual([a.logCount, b.logCount, a.batches, b.batches], [1, 1, 1, 1]);
    // A full call holds little more than its bytes.
    while (builder.add(received("full"))) continue;
    const full = builder.take(true)!;
    assert.ok(full.bytes.buffer.byteLength < 2 * full.bytes.length);
  });

  test("add refuses, changing nothing, a batch of another session or one the call has no room for", () => {
    const builder = new CallBuilder();
    assert.ok(builder.add(received("a")));
    const size = builder.size;
    assert.equal(builder.add(received("b", 10, "other")), false);
    assert.equal(builder.size, size);
    let added = 1;
    while (builder.add(received(`n${added}`))) added++;
    assert.ok(builder.size <= MAX_CALL_BYTES);
    const call = builder.take()!;
    assert.equal(call.batches, added);
    assert.equal(call.logCount, 10 * added);
    assert.equal(fromBinary(ReportBoundaryLogsRequestSchema, call.bytes).logs.length, 10 * added);
  });

  test("a joined call is cut between its batches: the first part fits the room, the rest carries the others, counts kept", () => {
    const batches = [received("a", 2), received("b", 3), received("c", 4), received("d", 5)];
    const { call } = firstCall(batches);
    const urls = (b: { bytes: Uint8Array }) =>
      fromBinary(ReportBoundaryLogsRequestSchema, b.bytes).logs.map((l) => (l.resource.case === "httpRequest" ? l.resource.value.url : ""));
    const roomForTwo = firstCall(batches.slice(0, 2)).call.bytes.length;
    const [fits, rest] = cutCall(call, roomForTwo + 1)!;
    assert.equal(fits.bytes.length, roomForTwo);
    assert.deepEqual([fits.logCount, fits.batches, rest.logCount, rest.batches], [5, 2, 9, 2]);
    assert.deepEqual([...urls(fits), ...urls(rest)], urls(call));
    assert.equal(fromBinary(ReportBoundaryLogsRequestSchema, rest.bytes).sessionId, "session");
    // The rest can be cut again; a lone batch or no room cannot.
    const [c, d] = cutCall(rest, rest.bytes.length - 1)!;
    assert.deepEqual([urls(c).length, urls(d).length], [4, 5]);
    assert.equal(cutCall(c, 1 << 20), undefined);
    assert.equal(cutCall(call, 10), undefined);
  });

  test("a call joins at most MAX_CALL_BATCHES batches, however small they are", () => {
    const tiny = Array.from({ length: MAX_CALL_BATCHES + 10 }, () => decodeLogBatch(Uint8Array.of(0x0a, 0x00)));
    const { call, taken } = firstCall(tiny);
    assert.equal(taken, MAX_CALL_BATCHES);
    assert.equal(call.logCount, MAX_CALL_BATCHES);
    assert.equal(fromBinary(ReportBoundaryLogsRequestSchema, call.bytes).logs.length, MAX_CALL_BATCHES);
    assert.equal(firstCall(tiny.slice(taken)).taken, 10);
  });
});
