import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  decodeFrameMessage,
  encodeFrame,
  encodeLogsFrame,
  encodeStatusFrame,
  ERR_MESSAGE_TOO_LARGE,
  ERR_UNSUPPORTED_TAG,
  FrameDecoder,
  FrameError,
  MAX_MESSAGE_SIZE,
  TAG_V1,
  TAG_V2,
  type Frame,
} from "../../src/boundary/codec.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function decodeAll(chunks: Buffer[]): Frame[] {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let f = decoder.next(); f; f = decoder.next()) frames.push(f);
  }
  return frames;
}

function headerError(bytes: number[]): string {
  const decoder = new FrameDecoder();
  decoder.push(Buffer.from(bytes));
  try {
    decoder.next();
  } catch (err) {
    assert.ok(err instanceof FrameError);
    return err.message;
  }
  return "no error";
}

describe("frame writer golden bytes", () => {
  test("header is tag<<24 | length, big-endian", () => {
    assert.equal(hex(encodeFrame(TAG_V2, Uint8Array.of(1, 2))), "020000020102");
  });

  test("TagV1 carries a bare ReportBoundaryLogsRequest", () => {
    assert.equal(hex(encodeLogsFrame({ sessionId: "s" }, TAG_V1)), "01000003" + "120173");
  });

  test("TagV2 wraps the request in BoundaryMessage.logs (field 1)", () => {
    assert.equal(hex(encodeLogsFrame({ sessionId: "s" })), "02000005" + "0a03120173");
  });

  test("TagV2 status carries BoundaryStatus in field 2", () => {
    assert.equal(hex(encodeStatusFrame({ droppedChannelFull: 5n, droppedBatchFull: 3n })), "02000006" + "120408051003");
  });

  test("a payload of exactly 32768 bytes is written", () => {
    const frame = encodeFrame(TAG_V1, new Uint8Array(MAX_MESSAGE_SIZE));
    assert.equal(hex(frame.subarray(0, 4)), "01008000");
    assert.equal(frame.length, 4 + MAX_MESSAGE_SIZE);
  });

  test("refuses a payload of 32769 bytes", () => {
    assert.throws(() => encodeFrame(TAG_V2, new Uint8Array(MAX_MESSAGE_SIZE + 1)), { message: ERR_MESSAGE_TOO_LARGE });
  });

  test("refuses an unknown tag", () => {
    assert.throws(() => encodeFrame(3, new Uint8Array(1)), { message: ERR_UNSUPPORTED_TAG });
    assert.throws(() => encodeFrame(0, new Uint8Array(1)), { message: ERR_UNSUPPORTED_TAG });
  });
});

describe("frame reader", () => {
  test("accepts a header announcing exactly 32768 bytes", () => {
    const frames = decodeAll([Buffer.from([2, 0, 0x80, 0]), Buffer.alloc(MAX_MESSAGE_SIZE)]);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.payload.length, MAX_MESSAGE_SIZE);
  });

  test("rejects a header announcing 32769 bytes as message too large", () => {
    assert.equal(headerError([1, 0, 0x80, 1]), ERR_MESSAGE_TOO_LARGE);
  });

  test("checks the tag before the length", () => {
    assert.equal(headerError([0xff, 0xff, 0xff, 0xff]), ERR_UNSUPPORTED_TAG);
    assert.equal(headerError([0, 0, 0, 1]), ERR_UNSUPPORTED_TAG);
  });

  test("waits for the rest of a frame split anywhere", () => {
    const frame = encodeLogsFrame({ sessionId: "abc" });
    const decoder = new FrameDecoder();
    for (const byte of frame.subarray(0, -1)) {
      decoder.push(Buffer.of(byte));
      assert.equal(decoder.next(), undefined);
    }
    decoder.push(frame.subarray(-1));
    const got = decoder.next();
    assert.ok(got);
    const message = decodeFrameMessage(got);
    assert.equal(message.kind, "logs");
    assert.equal(message.kind === "logs" && message.batch.sessionId, "abc");
  });

  test("decodes the same frames however the stream is chunked", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map((p, i) => encodeFrame(i % 2 ? TAG_V1 : TAG_V2, p)));
          const chunks: Buffer[] = [];
          for (let at = 0, i = 0; at < stream.length; i++) {
            const size = cuts[i % cuts.length]!;
            chunks.push(stream.subarray(at, at + size));
            at += size;
          }
          const frames = decodeAll(chunks);
          assert.deepEqual(
            frames.map((f) => hex(f.payload)),
            payloads.map(hex),
          );
          assert.deepEqual(
            frames.map((f) => f.tag),
            payloads.map((_, i) => (i % 2 ? TAG_V1 : TAG_V2)),
          );
        },
      ),
    );
  });

  test("a status frame decodes to its counters; an empty envelope is an unknown variant", () => {
    const [status] = decodeAll([encodeStatusFrame({ droppedChannelFull: 5n, droppedBatchFull: 3n })]);
    const message = decodeFrameMessage(status!);
    assert.equal(message.kind, "status");
    assert.equal(message.kind === "status" && message.status.droppedChannelFull, 5n);
    assert.equal(decodeFrameMessage({ tag: TAG_V2, payload: new Uint8Array() }).kind, "unknown");
  });

  test("an undecodable body throws from decodeFrameMessage, not from the reader", () => {
    const frames = decodeAll([encodeFrame(TAG_V2, Uint8Array.of(0xff, 0xff, 0xff))]);
    assert.equal(frames.length, 1);
    assert.throws(() => decodeFrameMessage(frames[0]!));
  });
});
