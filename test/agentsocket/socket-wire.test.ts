import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { UpdateAppStatusRequest_AppStatusState, UpdateAppStatusRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import type { AgentSocketPart } from "../../src/agentsocket/agent-socket.js";
import { agentSocketClient, subAgentClient } from "../../src/agentsocket/client.js";
import { exchange } from "../drpc/sockets.js";
import { hex, RecordingUpstream, startSocketPart } from "./fixtures.js";

const PING = "/coder.agentsocket.v1.AgentSocket/Ping";
const SYNC_START = "/coder.agentsocket.v1.AgentSocket/SyncStart";
const SYNC_WANT = "/coder.agentsocket.v1.AgentSocket/SyncWant";
const UPDATE_APP_STATUS = "/coder.agentsocket.v1.AgentSocket/UpdateAppStatus";

/** Invoke + Message + CloseSend on `stream`, as a Go drpcconn sends a unary call. */
function unary(stream: number, invoke: string, name: string, message: string): Buffer {
  const s = stream.toString(16).padStart(2, "0");
  const body = hex(message);
  return Buffer.concat([
    hex(`03 ${s} 01 ${invoke}`),
    Buffer.from(name),
    hex(`05 ${s} 02`),
    Buffer.from([body.length]),
    body,
    hex(`0d ${s} 03 00`),
  ]);
}

describe("agent socket on the wire (dRPC directly on the unix socket)", () => {
  let upstream: RecordingUpstream;
  let part: AgentSocketPart;
  let socketPath: string;
  let dir: string;

  before(async () => {
    upstream = new RecordingUpstream();
    ({ part, socketPath, dir } = await startSocketPart(upstream));
  });
  after(async () => {
    await part.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("Ping: invoke bytes in, an empty message and CloseSend out", async () => {
    const invoke = Buffer.concat([hex("03 01 01 26"), Buffer.from(PING), hex("05 01 02 00 0d 01 03 00")]);
    const reply = await exchange(socketPath, invoke, 8);
    assert.deepEqual(reply, hex("05 01 01 00 0d 01 02 00"));
  });

  test("SyncStart then SyncWant on one connection are answered on streams 1 and 2", async () => {
    const send = Buffer.concat([
      unary(1, "2b", SYNC_START, "0a 05 77 69 72 65 31"),
      unary(2, "2a", SYNC_WANT, "0a 05 77 69 72 65 32 12 05 77 69 72 65 31"),
    ]);
    const reply = await exchange(socketPath, send, 16);
    assert.deepEqual(reply, hex("05 01 01 00 0d 01 02 00 05 02 01 00 0d 02 02 00"));
    assert.equal(part.graph.status("wire1"), "started");
    assert.deepEqual(part.graph.describe("wire2").dependencies.map((d) => d.dependsOn), ["wire1"]);
  });

  test("a unit whose dependency is unmet fails SyncStart with an Error frame: code 0, then Coder's text", async () => {
    part.graph.want("blocked", "never");
    const text = Buffer.from('cannot start unit "blocked": unit not ready');
    const reply = await exchange(socketPath, unary(1, "2b", SYNC_START, "0a 07 62 6c 6f 63 6b 65 64"), 4 + 8 + text.length);
    // Coder's service returns plain wrapped errors: drpcerr.Code finds no code, so the frame says 0.
    const code = hex("00 00 00 00 00 00 00 00");
    assert.deepEqual(reply, Buffer.concat([hex("07 01 01"), Buffer.from([8 + text.length]), code, text]));
  });

  test("UpdateAppStatus reaches the upstream exactly as sent", async () => {
    const reply = await exchange(socketPath, unary(1, "31", UPDATE_APP_STATUS, "0a 01 78 10 01 1a 01 6d"), 8);
    assert.deepEqual(reply, hex("05 01 01 00 0d 01 02 00"));
    const got = upstream.appStatuses.at(-1)!;
    assert.deepEqual(got, fromBinary(UpdateAppStatusRequestSchema, hex("0a 01 78 10 01 1a 01 6d")));
    assert.equal(got.state, UpdateAppStatusRequest_AppStatusState.IDLE);
  });

  test("UpdateAppStatus without a coderd connection fails 'agent not connected to coderd'", async () => {
    upstream.connected = false;
    try {
      const reply = await exchange(socketPath, unary(1, "31", UPDATE_APP_STATUS, "0a 01 78"), 4 + 37);
      assert.deepEqual(reply.subarray(0, 4), hex("07 01 01 25"));
      assert.equal(reply.subarray(12).toString(), "agent not connected to coderd");
    } finally {
      upstream.connected = true;
    }
  });

  test("an unknown method gets dRPC's unknown-rpc error with code 0", async () => {
    const name = "/coder.agentsocket.v1.AgentSocket/Nope";
    const send = Buffer.concat([hex("03 01 01 26"), Buffer.from(name), hex("05 01 02 00 0d 01 03 00")]);
    const text = `protocol error: unknown rpc: "${name}"`;
    const reply = await exchange(socketPath, send, 4 + 8 + text.length);
    assert.deepEqual(reply.subarray(0, 4), Buffer.from([0x07, 0x01, 0x01, 8 + text.length]));
    assert.deepEqual(reply.subarray(4, 12), hex("00 00 00 00 00 00 00 00"));
    assert.equal(reply.subarray(12).toString(), text);
  });

  test("SyncReady on an unregistered unit is ready", async () => {
    const client = agentSocketClient(socketPath);
    assert.deepEqual(await client.syncReady({ unit: "unregistered" }), { $typeName: "coder.agentsocket.v1.SyncReadyResponse", ready: true });
  });

  test("SyncList reports every registered unit with its status and readiness", async () => {
    await agentSocketClient(socketPath).syncStart({ unit: "twice" });
    const { units } = await agentSocketClient(socketPath).syncList({});
    const twice = units.find((u) => u.unit === "twice");
    assert.equal(twice?.status, "started");
    assert.equal(twice?.isReady, true);
    assert.equal(units.find((u) => u.unit === "blocked")?.isReady, false);
    assert.equal(units.find((u) => u.unit === "never"), undefined, "a wanted but unregistered unit is not listed");
  });

  test("the sub-agent relay forwards ListSubAgents and leaves other Agent methods unimplemented", async () => {
    const client = subAgentClient(socketPath);
    assert.deepEqual((await client.listSubAgents({})).agents, []);
    await assert.rejects(client.reportBoundaryLogs({}), (err: ConnectError) => err.code === Code.Unimplemented);
  });
});

/**
 * The texts Coder's agent socket service (agent/agentsocket/service.go
 * wrapping agent/unit/manager.go's errors) sends, which a Go drpc client
 * returns as its error's text unchanged (drpcwire.UnmarshalError), and which
 * `coder exp sync` prints after its own prefix ("start unit failed: ", …).
 */
describe("Coder's unit error texts through the agent socket", () => {
  let part: AgentSocketPart;
  let socketPath: string;
  let dir: string;
  let client: ReturnType<typeof agentSocketClient>;

  before(async () => {
    ({ part, socketPath, dir } = await startSocketPart());
    client = agentSocketClient(socketPath);
  });
  after(async () => {
    await part.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Asserts that `call` fails with exactly `text`, carried with code 0 (Connect's Unknown) as Go's errors are. */
  async function failsWith(call: Promise<unknown>, text: string): Promise<void> {
    await assert.rejects(call, (err: ConnectError) => {
      assert.equal(err.rawMessage, text);
      assert.equal(err.code, Code.Unknown);
      return true;
    });
  }

  test("SyncStart before the unit's dependencies are complete", async () => {
    await client.syncWant({ unit: "web", dependsOn: "db" });
    await failsWith(client.syncStart({ unit: "web" }), 'cannot start unit "web": unit not ready');
  });

  test("SyncStart of a unit already started", async () => {
    await client.syncStart({ unit: "db" });
    await failsWith(client.syncStart({ unit: "db" }), 'cannot start unit "db": checking status for unit "db": same status already set');
  });

  test("SyncComplete of a unit never registered", async () => {
    await failsWith(client.syncComplete({ unit: "nosuch" }), 'cannot complete unit "nosuch": unit "nosuch" must be registered first: unit not found');
  });

  test("SyncReady of an empty unit name", async () => {
    await failsWith(client.syncReady({ unit: "" }), "cannot check readiness: unit ID cannot be empty: unit name is required");
  });

  test("SyncWant closing a cycle: the wrapped error, then the cycle detail on its own line", async () => {
    await client.syncWant({ unit: "app", dependsOn: "db" });
    await failsWith(
      client.syncWant({ unit: "db", dependsOn: "app" }),
      'cannot add dependency: adding edge for unit "db": failed to add dependency\nadding edge (db -> app) would create a cycle',
    );
    assert.equal(part.graph.status("db"), "started", "the refused edge changes nothing");
  });
});
