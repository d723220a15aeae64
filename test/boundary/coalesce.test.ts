import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { callLength, coalesce, MAX_CALL_BYTES } from "../../src/boundary/coalesce.js";
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
    const call = coalesce(batches);
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
    assert.equal(callLength(batches), 2);
    assert.equal(callLength(batches.slice(2)), 1);
    const confined = logBatchOf(create(ReportBoundaryLogsRequestSchema, { ...logsRequest("e"), confinedProcessName: "ai-agent" }));
    assert.equal(callLength([received("a"), confined]), 1);
  });

  test("a call stays within 32 KiB; a single batch always goes, whatever its size", () => {
    const batches = Array.from({ length: 200 }, (_, i) => received(`p${i}`));
    const n = callLength(batches);
    const size = batches.slice(0, n).reduce((s, b) => s + b.bytes.length, 0);
    assert.ok(n > 1 && size <= MAX_CALL_BYTES && size + batches[n]!.bytes.length > MAX_CALL_BYTES);
    assert.ok(coalesce(batches.slice(0, n)).bytes.length <= MAX_CALL_BYTES);
    const huge = received(`h${"x".repeat(40_000)}`, 1);
    assert.equal(callLength([huge, received("a")]), 1);
  });

  test("a batch encoded in another field order is re-encoded, never mangled", () => {
    // session_id (field 2) before the logs: valid protobuf, not what Go writes.
    const odd = create(ReportBoundaryLogsRequestSchema, logsRequest("odd", 2));
    const logs = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { logs: odd.logs }));
    const session = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { sessionId: "session" }));
    const bytes = Buffer.concat([session, logs]);
    const batch = decodeLogBatch(bytes);
    const call = coalesce([received("a", 1), batch]);
    const decoded = fromBinary(ReportBoundaryLogsRequestSchema, call.bytes);
    assert.equal(decoded.sessionId, "session");
    assert.deepEqual(
      decoded.logs.map((l) => (l.resource.case === "httpRequest" ? l.resource.value.url : "")),
      ["https://example.com/a/0", "https://example.com/odd/0", "https://example.com/odd/1"],
    );
  });
});
