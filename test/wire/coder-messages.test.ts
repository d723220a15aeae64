// Golden bytes for Coder's protobuf messages, written out by hand from the
// field numbers in Coder's agent.proto, agentsocket.proto and boundary.proto.
// Go's encoder emits fields in ascending number order, packs repeated enums
// and emits `optional` fields whenever they are set, even to zero.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  BoundaryLogSchema,
  CreateSubAgentRequest_App_SharingLevel,
  CreateSubAgentRequest_DisplayApp,
  CreateSubAgentRequestSchema,
  CreateSubAgentResponseSchema,
  DeleteSubAgentRequestSchema,
  ListSubAgentsResponseSchema,
  ReportBoundaryLogsRequestSchema,
  UpdateAppStatusRequest_AppStatusState as AppStatusState,
  UpdateAppStatusRequestSchema,
} from "../../gen/coder/agent/v2/agent_pb.js";
import {
  SyncListResponseSchema,
  SyncReadyResponseSchema,
  SyncStatusResponseSchema,
  SyncWantRequestSchema,
} from "../../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { BoundaryMessageSchema } from "../../gen/coder/boundarylogproxy/codec/v1/boundary_pb.js";

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex").replace(/(..)(?!$)/g, "$1 ");
}

/** Encodes to exactly `golden` and decodes `golden` back to an equal message. */
function assertGolden<D extends DescMessage>(schema: D, msg: MessageShape<D>, golden: string): void {
  assert.equal(toHex(toBinary(schema, msg)), toHex(hex(golden)));
  const decoded = fromBinary(schema, hex(golden));
  assert.equal(toHex(toBinary(schema, decoded)), toHex(hex(golden)));
}

const ID = "0102030405060708090a0b0c0d0e0f10";
const TOKEN = "f0e0d0c0b0a090807060504030201000";

describe("UpdateAppStatusRequest", () => {
  it("encodes {slug:x, state:IDLE, message:m} as in the spec", () => {
    assertGolden(
      UpdateAppStatusRequestSchema,
      create(UpdateAppStatusRequestSchema, { slug: "x", state: AppStatusState.IDLE, message: "m" }),
      "0a 01 78 10 01 1a 01 6d",
    );
  });

  it("omits field 2 for WORKING, the zero value", () => {
    assertGolden(
      UpdateAppStatusRequestSchema,
      create(UpdateAppStatusRequestSchema, { slug: "x", state: AppStatusState.WORKING, message: "m" }),
      "0a 01 78 1a 01 6d",
    );
  });

  it("carries the uri in field 4", () => {
    assertGolden(
      UpdateAppStatusRequestSchema,
      create(UpdateAppStatusRequestSchema, { slug: "x", state: AppStatusState.FAILURE, uri: "u" }),
      "0a 01 78 10 03 22 01 75",
    );
  });

  it("skips unknown fields on decode and keeps them on re-encode", () => {
    // field 15 varint 5, field 20 bytes "hi" between slug and state
    const bytes = hex("0a 01 78 78 05 a2 01 02 68 69 10 02");
    const msg = fromBinary(UpdateAppStatusRequestSchema, bytes);
    assert.equal(msg.slug, "x");
    assert.equal(msg.state, AppStatusState.COMPLETE);
    assert.equal(toHex(toBinary(UpdateAppStatusRequestSchema, msg)), toHex(hex("0a 01 78 10 02 78 05 a2 01 02 68 69")));
  });
});

describe("BoundaryLog and ReportBoundaryLogsRequest", () => {
  const allowed = create(BoundaryLogSchema, {
    allowed: true,
    time: timestampFromDate(new Date(1700000000000)),
    resource: { case: "httpRequest", value: { method: "GET", url: "https://a", matchedRule: "r" } },
    sequenceNumber: 7,
  });
  allowed.time!.nanos = 5;
  const ALLOWED =
    "08 01" + // allowed
    " 12 08 08 80 e2 cf aa 06 10 05" + // time {seconds: 1700000000, nanos: 5}
    " 1a 13 0a 03 47 45 54 12 09 68 74 74 70 73 3a 2f 2f 61 1a 01 72" + // http_request
    " 20 07"; // sequence_number

  it("encodes an allowed request with time, matched rule and sequence number", () => {
    assertGolden(BoundaryLogSchema, allowed, ALLOWED);
  });

  it("encodes a denied request without a matched rule, sequence 0 omitted", () => {
    assertGolden(
      BoundaryLogSchema,
      create(BoundaryLogSchema, { resource: { case: "httpRequest", value: { method: "GET", url: "u" } } }),
      "1a 08 0a 03 47 45 54 12 01 75",
    );
  });

  it("wraps logs with session_id and confined_process_name", () => {
    assertGolden(
      ReportBoundaryLogsRequestSchema,
      create(ReportBoundaryLogsRequestSchema, { logs: [allowed], sessionId: "s", confinedProcessName: "c" }),
      `0a 23 ${ALLOWED} 12 01 73 1a 01 63`,
    );
  });
});

describe("sub-agent messages", () => {
  it("emits optional fields set to zero and packs display_apps", () => {
    const req = create(CreateSubAgentRequestSchema, {
      name: "dev",
      directory: "/w",
      architecture: "amd64",
      operatingSystem: "linux",
      apps: [{ slug: "a", hidden: false, order: 0, share: CreateSubAgentRequest_App_SharingLevel.OWNER }],
      displayApps: [CreateSubAgentRequest_DisplayApp.VSCODE, CreateSubAgentRequest_DisplayApp.WEB_TERMINAL],
      id: new Uint8Array(0),
    });
    assertGolden(
      CreateSubAgentRequestSchema,
      req,
      "0a 03 64 65 76 12 02 2f 77 1a 05 61 6d 64 36 34 22 05 6c 69 6e 75 78" +
        " 2a 09 0a 01 61 38 00 50 00 58 00" + // app: slug, hidden=false, order=0, share=OWNER
        " 32 02 00 02" + // display_apps packed
        " 3a 00", // id: set, empty
    );
  });

  it("leaves unset optional fields out entirely", () => {
    assertGolden(
      CreateSubAgentRequestSchema,
      create(CreateSubAgentRequestSchema, { name: "dev", apps: [{ slug: "a" }] }),
      "0a 03 64 65 76 2a 03 0a 01 61",
    );
  });

  it("encodes the created agent and app creation errors", () => {
    assertGolden(
      CreateSubAgentResponseSchema,
      create(CreateSubAgentResponseSchema, {
        agent: { name: "n", id: hex(ID), authToken: hex(TOKEN) },
        appCreationErrors: [{ index: 0, field: "", error: "bad" }],
      }),
      `0a 27 0a 01 6e 12 10 ${ID} 1a 10 ${TOKEN} 12 07 12 00 1a 03 62 61 64`,
    );
  });

  it("encodes list and delete", () => {
    assertGolden(
      ListSubAgentsResponseSchema,
      create(ListSubAgentsResponseSchema, { agents: [{ name: "a" }, { name: "b" }] }),
      "0a 03 0a 01 61 0a 03 0a 01 62",
    );
    assertGolden(DeleteSubAgentRequestSchema, create(DeleteSubAgentRequestSchema, { id: hex(ID) }), `0a 10 ${ID}`);
  });
});

describe("BoundaryMessage envelope", () => {
  it("puts logs in field 1", () => {
    assertGolden(
      BoundaryMessageSchema,
      create(BoundaryMessageSchema, { msg: { case: "logs", value: { sessionId: "s" } } }),
      "0a 03 12 01 73",
    );
  });

  it("puts status {5, 3} in field 2", () => {
    assertGolden(
      BoundaryMessageSchema,
      create(BoundaryMessageSchema, { msg: { case: "status", value: { droppedChannelFull: 5n, droppedBatchFull: 3n } } }),
      "12 04 08 05 10 03",
    );
  });
});

describe("agent socket messages", () => {
  it("encodes SyncWant, SyncReady and SyncStatus", () => {
    assertGolden(SyncWantRequestSchema, create(SyncWantRequestSchema, { unit: "b", dependsOn: "a" }), "0a 01 62 12 01 61");
    assertGolden(SyncReadyResponseSchema, create(SyncReadyResponseSchema, { ready: true }), "08 01");
    assertGolden(
      SyncStatusResponseSchema,
      create(SyncStatusResponseSchema, {
        status: "pending",
        dependencies: [{ unit: "b", dependsOn: "a", requiredStatus: "completed", currentStatus: "" }],
      }),
      "0a 07 70 65 6e 64 69 6e 67 1a 11 0a 01 62 12 01 61 1a 09 63 6f 6d 70 6c 65 74 65 64",
    );
  });

  it("decodes an earlier revision's ScriptInfo{id, status} list as units", () => {
    const list = fromBinary(SyncListResponseSchema, hex("0a 0a 0a 01 61 12 05 72 65 61 64 79"));
    assert.equal(list.units[0]?.unit, "a");
    assert.equal(list.units[0]?.status, "ready");
  });
});
