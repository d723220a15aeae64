import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, ScalarType, toBinary, type DescField, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import fc from "fast-check";
import { file_agentd_gitwatch_v1_gitwatch } from "../../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import { file_agentd_process_v1_process } from "../../gen/agentd/process/v1/process_pb.js";
import { file_coder_agent_v2_agent } from "../../gen/coder/agent/v2/agent_pb.js";
import { file_coder_agentsocket_v1_agentsocket, SyncStatusResponseSchema } from "../../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { messageEncoder } from "../../src/drpc/message-encoder.js";

const FILES: DescFile[] = [
  file_coder_agentsocket_v1_agentsocket,
  file_coder_agent_v2_agent,
  file_agentd_process_v1_process,
  file_agentd_gitwatch_v1_gitwatch,
];

function messagesOf(files: DescFile[]): DescMessage[] {
  const out: DescMessage[] = [];
  const walk = (m: DescMessage) => {
    out.push(m);
    m.nestedMessages.forEach(walk);
  };
  for (const f of files) f.messages.forEach(walk);
  return out;
}

const SCALARS = new Map<ScalarType, fc.Arbitrary<unknown>>([
  [ScalarType.STRING, fc.oneof(fc.string({ unit: "binary", maxLength: 8 }), fc.constant(""), fc.constant("\ud800x"))],
  [ScalarType.BOOL, fc.boolean()],
  [ScalarType.INT32, fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(0, -1, 127, 128))],
  [ScalarType.UINT32, fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.constant(0))],
  [ScalarType.BYTES, fc.uint8Array({ maxLength: 6 })],
]);

const ENUM = fc.integer({ min: -3, max: 20 });

/** Values for the fields the direct encoder handles; other fields stay unset so the schema's own defaults apply. */
function fieldArb(f: DescField, depth: number): fc.Arbitrary<unknown> | undefined {
  if (f.oneof) return undefined;
  switch (f.fieldKind) {
    case "scalar":
      return SCALARS.get(f.scalar);
    case "enum":
      return ENUM;
    case "message":
      return depth > 0 ? valueArb(f.message, depth - 1) : undefined;
    case "list": {
      const item = f.listKind === "message" ? (depth > 0 ? valueArb(f.message, depth - 1) : undefined) : f.listKind === "enum" ? ENUM : SCALARS.get(f.scalar);
      return item && fc.array(item, { maxLength: 3 });
    }
    default:
      return undefined;
  }
}

function valueArb(desc: DescMessage, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of desc.fields) {
    const a = fieldArb(f, depth);
    if (a) fields[f.localName] = a;
  }
  return fc.record(fields, { requiredKeys: [] });
}

describe("direct reply encoder", () => {
  for (const desc of messagesOf(FILES)) {
    test(`${desc.typeName}: the same bytes as protobuf-es for any value`, () => {
      const encode = messageEncoder(desc);
      fc.assert(
        fc.property(valueArb(desc, 2), (value) => {
          assert.deepEqual(Buffer.from(encode(value as never)), Buffer.from(toBinary(desc, create(desc, value as never))));
        }),
        { numRuns: 150 },
      );
    });
  }

  test("a SyncStatus reply as the agent socket sends it", () => {
    const value = {
      status: "pending",
      isReady: false,
      dependencies: [
        { unit: "web", dependsOn: "db", requiredStatus: "completed", currentStatus: "completed", isSatisfied: true },
        { unit: "web", dependsOn: "cache", requiredStatus: "completed", currentStatus: "", isSatisfied: false },
      ],
    };
    const direct = messageEncoder(SyncStatusResponseSchema)(value);
    assert.deepEqual(Buffer.from(direct), Buffer.from(toBinary(SyncStatusResponseSchema, create(SyncStatusResponseSchema, value))));
  });

  test("a message carrying unknown fields goes through protobuf-es, which keeps them", () => {
    const msg = create(SyncStatusResponseSchema, { status: "started" });
    msg.$unknown = [{ no: 99, wireType: 0, data: Uint8Array.of(1) }];
    const direct = messageEncoder(SyncStatusResponseSchema)(msg);
    assert.deepEqual(Buffer.from(direct), Buffer.from(toBinary(SyncStatusResponseSchema, msg)));
    assert.ok(direct.length > toBinary(SyncStatusResponseSchema, create(SyncStatusResponseSchema, { status: "started" })).length);
  });

  test("no reply at all is the empty message", () => {
    assert.equal(messageEncoder(SyncStatusResponseSchema)(undefined).length, 0);
  });
});
