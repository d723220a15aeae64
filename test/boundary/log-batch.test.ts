import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import fc from "fast-check";
import {
  ReportBoundaryLogsRequestSchema,
  ReportBoundaryLogsResponseSchema,
  type ReportBoundaryLogsRequest,
} from "../../gen/coder/agent/v2/agent_pb.js";
import { Agent } from "../../gen/coder/agent/v2/agent_pb.js";
import { firstCall } from "../../src/boundary/coalesce.js";
import { decodeFrameMessage, encodeFrame, encodeLogsFrame, TAG_V1, TAG_V2 } from "../../src/boundary/codec.js";
import { batchRequest, decodeLogBatch, scanLogBatch } from "../../src/boundary/log-batch.js";
import { createInProcessTransport } from "../../src/coderd/in-process-transport.js";
import { knownEncoding } from "../../src/coderd/known-encoding.js";
import { createClient } from "@connectrpc/connect";

/** Wire types an unknown field may have (groups aside). */
const unknownField = fc.oneof(
  fc.record({ no: fc.integer({ min: 5, max: 2000 }), wireType: fc.constant(0), data: fc.constantFrom(Uint8Array.of(0), Uint8Array.of(0x96, 0x01)) }),
  fc.record({ no: fc.integer({ min: 5, max: 2000 }), wireType: fc.constant(1), data: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
  fc.record({ no: fc.integer({ min: 5, max: 2000 }), wireType: fc.constant(5), data: fc.uint8Array({ minLength: 4, maxLength: 4 }) }),
  fc
    .record({ no: fc.integer({ min: 5, max: 2000 }), body: fc.uint8Array({ maxLength: 20 }) })
    .map(({ no, body }) => ({ no, wireType: 2, data: Uint8Array.of(body.length, ...body) })),
);

const text = fc.string({ unit: "binary", maxLength: 40 });

const log = fc.record({
  allowed: fc.boolean(),
  time: fc.option(fc.record({ seconds: fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }), {
    nil: undefined,
  }),
  resource: fc.option(
    fc.record({ method: text, url: text, matchedRule: text }).map((value) => ({ case: "httpRequest" as const, value })),
    { nil: undefined },
  ),
  sequenceNumber: fc.integer(),
  $unknown: fc.option(fc.array(unknownField, { maxLength: 2 }), { nil: undefined }),
});

/** Requests of every shape the schema allows, unknown fields included, as bytes. */
const requestBytes = fc
  .record({
    logs: fc.array(log, { maxLength: 12 }),
    sessionId: text,
    confinedProcessName: text,
    $unknown: fc.option(fc.array(unknownField, { maxLength: 3 }), { nil: undefined }),
  })
  .map((init) => toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, init as MessageInitShape<typeof ReportBoundaryLogsRequestSchema>)));

/** Valid encodings broken in one of the ways a stream or a buggy writer breaks them. */
const damagedBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.tuple(requestBytes, fc.nat(), fc.nat(255)).map(([b, at, v]) => {
    const out = Uint8Array.from(b);
    if (out.length > 0) out[at % out.length] = v;
    return out;
  }),
  fc.tuple(requestBytes, fc.nat()).map(([b, at]) => b.subarray(0, b.length === 0 ? 0 : at % b.length)),
  fc.tuple(requestBytes, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([b, at, extra]) => {
    const cut = b.length === 0 ? 0 : at % b.length;
    return Uint8Array.from([...b.subarray(0, cut), ...extra, ...b.subarray(cut)]);
  }),
);

function decoded(bytes: Uint8Array): ReportBoundaryLogsRequest | Error {
  try {
    return fromBinary(ReportBoundaryLogsRequestSchema, bytes);
  } catch (err) {
    return err as Error;
  }
}

function assertTrueTo(batch: { sessionId: string; confinedProcessName: string; logCount: number }, request: ReportBoundaryLogsRequest) {
  assert.equal(batch.sessionId, request.sessionId);
  assert.equal(batch.confinedProcessName, request.confinedProcessName);
  assert.equal(batch.logCount, request.logs.length);
}

describe("a received request's bytes, checked without decoding its logs", () => {
  test("every well-formed request is taken by the fast scan, its fields as protobuf-es decodes them", () => {
    fc.assert(
      fc.property(requestBytes, (bytes) => {
        const batch = scanLogBatch(bytes);
        assert.ok(batch, "a well-formed request is plain");
        assert.equal(batch.bytes, bytes, "the bytes are kept, not re-encoded");
        assertTrueTo(batch, fromBinary(ReportBoundaryLogsRequestSchema, bytes));
      }),
      { numRuns: 500 },
    );
  });

  test("consecutive requests each get their own session texts, however alike their bytes", () => {
    const texts = ["a1", "a1", "b2", "", "b2", "b2", "żó", "ab", "ab"];
    const names = ["p", "p", "p", "q", "", "q", "q", "p", ""];
    for (const [i, sessionId] of texts.entries()) {
      const bytes = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { sessionId, confinedProcessName: names[i]!, logs: [{}] }));
      const batch = scanLogBatch(bytes);
      assert.equal(batch?.sessionId, sessionId, `request ${i}`);
      assert.equal(batch?.confinedProcessName, names[i], `request ${i}`);
      bytes.fill(0);
      assert.equal(batch?.sessionId, sessionId, "the texts do not depend on the bytes staying as they were");
    }
  });

  /** True when the bytes hold a 10-byte varint whose last byte sets more than bit 63 (anywhere; an over-approximation). */
  function overflowsVarint(bytes: Uint8Array): boolean {
    for (let i = 9; i < bytes.length; i++) {
      if (bytes[i]! > 1 && bytes.subarray(i - 9, i).every((b) => b >= 0x80)) return true;
    }
    return false;
  }

  test("accepts exactly what fromBinary accepts; whatever the scan takes, fromBinary takes with the same fields", () => {
    fc.assert(
      fc.property(damagedBytes, (bytes) => {
        const reference = decoded(bytes);
        // A varint over 64 bits: Go refuses it, protobuf-es takes it (tested on its own below).
        if (overflowsVarint(bytes)) return;
        const scanned = scanLogBatch(bytes);
        if (scanned) {
          assert.ok(!(reference instanceof Error), "the scan never takes what fromBinary refuses");
          assertTrueTo(scanned, reference);
        }
        let batch;
        try {
          batch = decodeLogBatch(bytes);
        } catch {
          assert.ok(reference instanceof Error, "refused only what fromBinary refuses");
          return;
        }
        assert.ok(!(reference instanceof Error), "accepted only what fromBinary accepts");
        assertTrueTo(batch, reference);
        assert.equal(batch.bytes, bytes);
      }),
      { numRuns: 3000 },
    );
  });

  test("invalid UTF-8 in a string is refused, as Go and protobuf-es refuse it", () => {
    const bytes = Uint8Array.of(0x12, 2, 0xc3, 0x28);
    assert.equal(scanLogBatch(bytes), undefined);
    assert.throws(() => decodeLogBatch(bytes));
    const nested = Uint8Array.of(0x0a, 6, 0x1a, 4, 0x12, 2, 0xff, 0xfe);
    assert.throws(() => decodeLogBatch(nested));
  });

  test("a length past its enclosing message, a truncated varint or field 0 is refused", () => {
    for (const bytes of [Uint8Array.of(0x0a, 5, 0x08, 1), Uint8Array.of(0x0a, 0x80), Uint8Array.of(0x02, 0)]) {
      assert.equal(scanLogBatch(bytes), undefined);
      assert.throws(() => decodeLogBatch(bytes));
    }
  });

  test("a varint over 64 bits is refused as Go refuses it, though protobuf-es would take it", () => {
    // An unknown varint field 9 whose tenth byte sets more than bit 63, after one log.
    const bytes = Uint8Array.of(0x0a, 2, 0x08, 1, 0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02);
    assert.doesNotThrow(() => fromBinary(ReportBoundaryLogsRequestSchema, bytes));
    assert.throws(() => decodeLogBatch(bytes), /cannot parse invalid wire-format data/);
    const inBit63 = Uint8Array.of(0x0a, 2, 0x08, 1, 0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    assert.equal(decodeLogBatch(inBit63).logCount, 1);
  });

  test("what the scan leaves to fromBinary (a known field of another wire type) is still decoded as today", () => {
    // sequence_number (field 4, int32) sent as fixed32: protobuf-es reads it its own way, and so do we.
    const bytes = Uint8Array.of(0x0a, 5, 0x25, 1, 0, 0, 0);
    assert.equal(scanLogBatch(bytes), undefined);
    const reference = decoded(bytes);
    if (reference instanceof Error) assert.throws(() => decodeLogBatch(bytes));
    else assertTrueTo(decodeLogBatch(bytes), reference);
  });
});

describe("frames into batches", () => {
  test("a TagV1 and a TagV2 logs frame both carry the request bytes boundary sent", () => {
    const init = { sessionId: "s-1", confinedProcessName: "proc", logs: [{ allowed: true, sequenceNumber: 7 }] };
    const request = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, init));
    for (const tag of [TAG_V1, TAG_V2] as const) {
      const frame = encodeLogsFrame(init, tag);
      const payload = frame.subarray(4);
      const message = decodeFrameMessage({ tag, payload });
      assert.equal(message.kind, "logs");
      if (message.kind !== "logs") return;
      assert.deepEqual(Buffer.from(message.batch.bytes), Buffer.from(request));
      assert.equal(message.batch.logCount, 1);
      assert.equal(message.batch.sessionId, "s-1");
    }
  });

  test("an undecodable request inside an envelope is refused like a bare one", () => {
    const bad = Uint8Array.of(0x0a, 4, 0x12, 2, 0xc3, 0x28);
    assert.throws(() => decodeFrameMessage({ tag: TAG_V2, payload: bad }));
    assert.throws(() => decodeFrameMessage(decodeFrameOf(encodeFrame(TAG_V1, bad.subarray(2)))));
  });
});

function decodeFrameOf(frame: Buffer) {
  return { tag: frame[0]!, payload: frame.subarray(4) };
}

describe("the request handed to the Agent API client", () => {
  test("carries the batch's bytes and fields true to them; its logs decode when read", () => {
    fc.assert(
      fc.property(requestBytes, (bytes) => {
        const batch = decodeLogBatch(bytes);
        const request = batchRequest(batch);
        assert.equal(knownEncoding(request), bytes, "sent as received, not encoded again");
        const reference = fromBinary(ReportBoundaryLogsRequestSchema, bytes);
        assert.equal(request.sessionId, reference.sessionId);
        assert.equal(request.confinedProcessName, reference.confinedProcessName);
        assert.deepEqual(request.logs, reference.logs);
      }),
      { numRuns: 200 },
    );
  });

  test("in process, the service receives exactly the request the bytes encode", async () => {
    const got: ReportBoundaryLogsRequest[] = [];
    const client = createClient(
      Agent,
      createInProcessTransport(Agent, {
        reportBoundaryLogs(req) {
          got.push(req);
          return create(ReportBoundaryLogsResponseSchema);
        },
      }),
    );
    const bytes = fc.sample(requestBytes, { numRuns: 20, seed: 17 });
    for (const b of bytes) await client.reportBoundaryLogs(batchRequest(decodeLogBatch(b)));
    assert.deepEqual(got, bytes.map((b) => fromBinary(ReportBoundaryLogsRequestSchema, b)));
  });
});

describe("coalescing batches of bytes", () => {
  test("a call decodes to every batch's logs in order, with the session once, whatever the batches' encodings", () => {
    const session = { sessionId: "s", confinedProcessName: "p" };
    const oneBatch = fc.oneof(
      requestBytes.map((b) => {
        const logs = fromBinary(ReportBoundaryLogsRequestSchema, b).logs;
        return toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { ...session, logs }));
      }),
      // The session fields first: valid protobuf, not what Go writes.
      requestBytes.map((b) => {
        const logs = fromBinary(ReportBoundaryLogsRequestSchema, b).logs;
        const head = toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, session));
        return Buffer.concat([head, toBinary(ReportBoundaryLogsRequestSchema, create(ReportBoundaryLogsRequestSchema, { logs }))]);
      }),
    );
    fc.assert(
      fc.property(fc.array(oneBatch, { minLength: 1, maxLength: 6 }), (all) => {
        const batches = all.map((b) => decodeLogBatch(b));
        const logs = [];
        while (batches.length > 0) {
          const { call, taken } = firstCall(batches);
          batches.splice(0, taken);
          const got = fromBinary(ReportBoundaryLogsRequestSchema, call.bytes);
          assert.equal(got.sessionId, "s");
          assert.equal(got.confinedProcessName, "p");
          assert.equal(call.logCount, got.logs.length);
          logs.push(...got.logs);
        }
        assert.deepEqual(logs, all.flatMap((b) => fromBinary(ReportBoundaryLogsRequestSchema, b).logs));
      }),
      { numRuns: 200 },
    );
  });
});
