import assert from "node:assert/strict";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ProcessService } from "../../gen/agentd/process/v1/process_pb.js";
import { Agent, type UpdateAppStatusRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import { DrpcServer } from "../../src/drpc/server.js";
import { createDrpcTransport } from "../../src/drpc/transport.js";
import { tempDir } from "../helpers/agentd.js";
import { dialUnix, exchange } from "./sockets.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const NAME = "/coder.agent.v2.Agent/UpdateAppStatus";
const INVOKE = Buffer.concat([hex("03 01 01 25"), Buffer.from(NAME), hex("05 01 02 08 0a 01 78 10 01 1a 01 6d 0d 01 03 00")]);

describe("dRPC server on a unix socket", () => {
  const received: UpdateAppStatusRequest[] = [];
  let socketPath: string;
  let server: net.Server;

  before(async () => {
    socketPath = path.join(tempDir(), "drpc.sock");
    const drpc = new DrpcServer();
    drpc.register(Agent, {
      updateAppStatus(req) {
        received.push(req);
        if (req.slug === "bad") throw new ConnectError("Invalid state provided.", Code.InvalidArgument);
        return {};
      },
      reportBoundaryLogs() {
        throw new Error("plain failure");
      },
    });
    drpc.register(ProcessService, {
      async *follow(req) {
        for (let i = 0; i < 3; i++) yield { data: Buffer.from(`${req.id}-${i}`) };
        yield { exited: true, exitCode: 0 };
      },
    });
    server = net.createServer((c) => void drpc.serve(c));
    await new Promise<void>((r) => server.listen(socketPath, r));
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test("answers the golden UpdateAppStatus invoke with the golden reply", async () => {
    const reply = await exchange(socketPath, INVOKE, 8);
    assert.deepEqual(reply, hex("05 01 01 00 0d 01 02 00"));
    assert.deepEqual({ slug: received.at(-1)?.slug, state: received.at(-1)?.state, message: received.at(-1)?.message }, { slug: "x", state: 1, message: "m" });
  });

  test("tolerates a Go client's trailing Close and serves the next stream on the same connection", async () => {
    const second = Buffer.concat([hex("03 02 01 25"), Buffer.from(NAME), hex("05 02 02 03 0a 01 79 0d 02 03 00")]);
    const reply = await exchange(socketPath, Buffer.concat([INVOKE, hex("0b 01 04 00"), second]), 16);
    assert.deepEqual(reply, hex("05 01 01 00 0d 01 02 00 05 02 01 00 0d 02 02 00"));
    assert.equal(received.at(-1)?.slug, "y");
  });

  test("answers an unknown RPC with dRPC's protocol error text", async () => {
    const name = "/coder.agent.v2.Agent/Nope";
    const invoke = Buffer.concat([hex(`03 01 01 ${name.length.toString(16)}`), Buffer.from(name), hex("05 01 02 00 0d 01 03 00")]);
    const reply = await exchange(socketPath, invoke, 4);
    const text = `protocol error: unknown rpc: "${name}"`;
    assert.deepEqual(reply.subarray(0, 4), hex(`07 01 01 ${(8 + text.length).toString(16)}`));
    assert.deepEqual(reply.subarray(4, 12), Buffer.alloc(8));
    assert.equal(reply.subarray(12).toString(), text);
  });

  test("answers a method the service leaves out with code 12", async () => {
    const client = createClient(Agent, createDrpcTransport({ dial: () => dialUnix(socketPath) }));
    await assert.rejects(client.listSubAgents({}), (err: ConnectError) => err.code === Code.Unimplemented && err.rawMessage === "Unimplemented");
  });

  test("carries handler errors as code and text", async () => {
    const client = createClient(Agent, createDrpcTransport({ dial: () => dialUnix(socketPath) }));
    await assert.rejects(client.updateAppStatus({ slug: "bad" }), (err: ConnectError) => err.code === Code.InvalidArgument && err.rawMessage === "Invalid state provided.");
    await assert.rejects(client.reportBoundaryLogs({}), (err: ConnectError) => err.code === Code.Unknown && err.rawMessage === "plain failure");
  });

  test("serves typed unary calls through the Connect transport", async () => {
    const client = createClient(Agent, createDrpcTransport({ dial: () => dialUnix(socketPath) }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.updateAppStatus({ slug: `s${i}` })));
    assert.ok(received.some((r) => r.slug === "s19"));
  });

  test("streams server-streaming replies", async () => {
    const client = createClient(ProcessService, createDrpcTransport({ dial: () => dialUnix(socketPath) }));
    const got: string[] = [];
    for await (const m of client.follow({ id: "p" })) got.push(m.exited ? `exit ${m.exitCode}` : Buffer.from(m.data).toString());
    assert.deepEqual(got, ["p-0", "p-1", "p-2", "exit 0"]);
  });

  test("closes a connection that sends garbage and keeps serving others", async () => {
    const reply = await exchange(socketPath, hex("05 ff ff ff ff ff ff ff ff ff ff 01 01 00"), 1);
    assert.equal(reply.length, 0);
    assert.deepEqual(await exchange(socketPath, INVOKE, 8), hex("05 01 01 00 0d 01 02 00"));
  });

  test("a deadline or abort also covers a dial that is still waiting, whose connection is then closed", async () => {
    let late: Promise<net.Socket> | undefined;
    const slowDial = () =>
      (late = new Promise<net.Socket>((resolve) => setTimeout(() => resolve(dialUnix(socketPath)), 500)));
    const client = createClient(Agent, createDrpcTransport({ dial: slowDial }));
    await assert.rejects(client.updateAppStatus({ slug: "x" }, { timeoutMs: 50 }), (err: ConnectError) => err.code === Code.DeadlineExceeded);
    const abort = new AbortController();
    const aborted = client.updateAppStatus({ slug: "x" }, { signal: abort.signal });
    abort.abort();
    await assert.rejects(aborted, (err: unknown) => ConnectError.from(err).code === Code.Canceled);
    const conn = await late!;
    if (!conn.destroyed) await new Promise((r) => conn.once("close", r));
  });

  test("reports a dialer that throws as Unavailable, with its message", async () => {
    const client = createClient(
      Agent,
      createDrpcTransport({
        dial: () => {
          throw new Error("no route");
        },
      }),
    );
    await assert.rejects(
      client.updateAppStatus({ slug: "x" }),
      (err: ConnectError) => err.code === Code.Unavailable && /no route/.test(err.rawMessage),
    );
  });

  test("reports an unreachable server as Unavailable", async () => {
    const client = createClient(Agent, createDrpcTransport({ dial: () => dialUnix(path.join(tempDir(), "none.sock")) }));
    await assert.rejects(client.updateAppStatus({ slug: "x" }), (err: ConnectError) => err.code === Code.Unavailable);
  });
});

describe("dRPC server: a handler's abort signal", () => {
  const LIST = "/coder.agent.v2.Agent/ListSubAgents";
  const invoke = (stream: string) => Buffer.concat([hex(`03 ${stream} 01 ${LIST.length.toString(16)}`), Buffer.from(LIST), hex(`05 ${stream} 02 00`)]);
  let socketPath: string;
  let server: net.Server;
  let seen: { aborted: Promise<void> } | undefined;

  before(async () => {
    socketPath = path.join(tempDir(), "drpc-abort.sock");
    const drpc = new DrpcServer();
    drpc.register(Agent, {
      listSubAgents(_req, ctx) {
        seen = { aborted: new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve())) };
        return new Promise(() => undefined);
      },
    });
    server = net.createServer((c) => void drpc.serve(c));
    await new Promise<void>((r) => server.listen(socketPath, r));
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  /** Resolves with what the handler recorded once it has been called. */
  async function handlerCalled(): Promise<{ aborted: Promise<void> }> {
    for (;;) {
      const current = seen;
      if (current) return current;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  test("aborts when the client sends Cancel for the call", { timeout: 10_000 }, async () => {
    seen = undefined;
    const conn = await dialUnix(socketPath);
    try {
      conn.write(invoke("01"));
      const call = await handlerCalled();
      conn.write(hex("09 01 03 00"));
      await call.aborted;
    } finally {
      conn.destroy();
    }
  });

  test("aborts when the connection closes", { timeout: 10_000 }, async () => {
    seen = undefined;
    const conn = await dialUnix(socketPath);
    conn.write(invoke("01"));
    const call = await handlerCalled();
    conn.destroy();
    await call.aborted;
  });
});
