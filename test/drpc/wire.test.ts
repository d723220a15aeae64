import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  decodeError,
  encodeError,
  encodeFrame,
  encodePacket,
  Kind,
  MAX_PACKET_BYTES,
  PacketReader,
  ProtocolError,
  SPLIT_BYTES,
  type Packet,
} from "../../src/drpc/wire.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const NAME = "/coder.agent.v2.Agent/UpdateAppStatus";

describe("dRPC frames", () => {
  test("encodes the UpdateAppStatus unary exchange byte for byte", () => {
    assert.equal(NAME.length, 0x25);
    assert.deepEqual(
      encodePacket({ kind: Kind.Invoke, streamId: 1, messageId: 1, data: Buffer.from(NAME) }),
      Buffer.concat([hex("03 01 01 25"), Buffer.from(NAME)]),
    );
    assert.deepEqual(
      encodePacket({ kind: Kind.Message, streamId: 1, messageId: 2, data: hex("0a 01 78 10 01 1a 01 6d") }),
      hex("05 01 02 08 0a 01 78 10 01 1a 01 6d"),
    );
    assert.deepEqual(encodePacket({ kind: Kind.CloseSend, streamId: 1, messageId: 3, data: Buffer.alloc(0) }), hex("0d 01 03 00"));
    assert.deepEqual(encodePacket({ kind: Kind.Message, streamId: 1, messageId: 1, data: Buffer.alloc(0) }), hex("05 01 01 00"));
  });

  test("sets the done, kind and control bits of the control byte", () => {
    const controls = [Kind.Invoke, Kind.Message, Kind.Error, Kind.Close, Kind.CloseSend, Kind.InvokeMetadata].map(
      (kind) => encodeFrame({ kind, streamId: 1, messageId: 1, done: true, control: false, data: new Uint8Array() })[0],
    );
    assert.deepEqual(controls, [0x03, 0x05, 0x07, 0x0b, 0x0d, 0x0f]);
    const cancel = encodeFrame({ kind: Kind.Cancel, streamId: 1, messageId: 1, done: true, control: true, data: new Uint8Array() });
    assert.equal(cancel[0], 0x89);
  });

  test("writes ids and lengths as LEB128 varints", () => {
    const f = encodeFrame({ kind: Kind.Message, streamId: 300, messageId: 1, done: true, control: false, data: Buffer.alloc(200) });
    assert.deepEqual(f.subarray(0, 6), hex("05 ac 02 01 c8 01"));
  });

  test("splits packets over 64 KiB into frames and reassembles them", () => {
    const data = Buffer.alloc(SPLIT_BYTES * 2 + 5, 7);
    const bytes = encodePacket({ kind: Kind.Message, streamId: 1, messageId: 1, data });
    const packets = new PacketReader().push(bytes);
    assert.equal(packets.length, 1);
    assert.deepEqual(packets[0]?.data, data);
  });

  test("skips frames with the control bit set", () => {
    const cancel = encodeFrame({ kind: Kind.Cancel, streamId: 1, messageId: 1, done: true, control: true, data: new Uint8Array() });
    const msg = encodePacket({ kind: Kind.Message, streamId: 1, messageId: 1, data: hex("01") });
    const packets = new PacketReader().push(Buffer.concat([cancel, msg]));
    assert.deepEqual(packets.map((p) => p.kind), [Kind.Message]);
  });
});

describe("dRPC reader errors", () => {
  const frame = (streamId: number, messageId: number, kind = Kind.Message, done = true) =>
    encodeFrame({ kind, streamId, messageId, done, control: false, data: hex("00") });

  test("rejects decreasing ids", () => {
    const r = new PacketReader();
    r.push(frame(2, 1));
    assert.throws(() => r.push(frame(1, 5)), new ProtocolError("id monotonicity violation"));
  });

  test("rejects a repeated id after its packet is done", () => {
    const r = new PacketReader();
    r.push(frame(1, 1));
    assert.throws(() => r.push(frame(1, 1)), /id monotonicity violation/);
  });

  test("rejects a kind change inside one packet", () => {
    const r = new PacketReader();
    r.push(frame(1, 1, Kind.Message, false));
    assert.throws(() => r.push(frame(1, 1, Kind.Error)), /packet kind change/);
  });

  test("rejects varints over 64 bits", () => {
    assert.throws(() => new PacketReader().push(hex("05 ff ff ff ff ff ff ff ff ff ff 01 01 00")), /varint too long/);
  });

  test("rejects packets over 4 MiB", () => {
    const r = new PacketReader();
    const big = Buffer.alloc(MAX_PACKET_BYTES / 4);
    for (let i = 0; i < 4; i++) r.push(encodeFrame({ kind: Kind.Message, streamId: 1, messageId: 1, done: false, control: false, data: big }));
    assert.throws(
      () => r.push(encodeFrame({ kind: Kind.Message, streamId: 1, messageId: 1, done: true, control: false, data: hex("00") })),
      /data overflow/,
    );
  });
});

describe("dRPC error payload", () => {
  test("is an 8-byte big-endian code then the text", () => {
    assert.deepEqual(encodeError(12, "Unimplemented"), Buffer.concat([hex("00 00 00 00 00 00 00 0c"), Buffer.from("Unimplemented")]));
    assert.deepEqual(decodeError(encodeError(12, "Unimplemented")), { code: 12, message: "Unimplemented" });
  });

  test("reads fewer than 8 bytes as plain text", () => {
    assert.deepEqual(decodeError(Buffer.from("oops")), { code: 0, message: "oops" });
  });
});

const packetArb = fc.record({
  kind: fc.constantFrom(Kind.Invoke, Kind.Message, Kind.Error, Kind.Close, Kind.CloseSend),
  data: fc.uint8Array({ maxLength: 300 }),
});

/** Encodes packets with increasing ids, as a sender numbers them. */
function stream(specs: { kind: Kind; data: Uint8Array }[], split: number): { bytes: Buffer; packets: Packet[] } {
  const packets = specs.map((s, i) => ({ ...s, streamId: 1 + Math.floor(i / 3), messageId: 1 + (i % 3) }));
  const frames = packets.flatMap((p) => {
    const out: Buffer[] = [];
    for (let at = 0; at === 0 || at < p.data.length; at += split) {
      const data = p.data.subarray(at, at + split);
      out.push(encodeFrame({ ...p, data, control: false, done: at + split >= p.data.length }));
    }
    return out;
  });
  return { bytes: Buffer.concat(frames), packets };
}

describe("dRPC reader properties", () => {
  test("any chunking of a valid stream decodes the same packets", () => {
    fc.assert(
      fc.property(fc.array(packetArb, { maxLength: 12 }), fc.integer({ min: 1, max: 64 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }), (specs, split, cuts) => {
        const { bytes, packets } = stream(specs, split);
        const reader = new PacketReader();
        const got: Packet[] = [];
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const n = cuts[i % cuts.length] as number;
          got.push(...reader.push(bytes.subarray(at, at + n)));
          at += n;
        }
        assert.deepEqual(
          got.map((p) => [p.kind, p.streamId, p.messageId, Buffer.from(p.data).toString("hex")]),
          packets.map((p) => [p.kind, p.streamId, p.messageId, Buffer.from(p.data).toString("hex")]),
        );
      }),
    );
  });

  test("random bytes end in packets or a ProtocolError, never anything else", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const reader = new PacketReader();
        try {
          for (const c of chunks) reader.push(Buffer.from(c));
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
        }
      }),
    );
  });
});
