import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import fc from "fast-check";
import { Agent, UpdateAppStatusRequest_AppStatusState } from "../../gen/coder/agent/v2/agent_pb.js";
import { YamuxSession } from "../../src/coderd/yamux/session.js";
import { DrpcServer } from "../../src/drpc/server.js";
import { createDrpcTransport } from "../../src/drpc/transport.js";
import { tempDir } from "../helpers/agentd.js";
import { dialUnix, tcpPair } from "./sockets.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const NAME = "/coder.agent.v2.Agent/UpdateAppStatus";
/** spec §5: Invoke(s1,m1), Message(s1,m2) `{slug:"x", state:IDLE, message:"m"}`, CloseSend(s1,m3). */
const CLIENT_REQUEST = Buffer.concat([
  hex("03 01 01 25"),
  Buffer.from(NAME),
  hex("05 01 02 08 0a 01 78 10 01 1a 01 6d"),
  hex("0d 01 03 00"),
]);
/** spec §5: Message(s1,m1) empty response, CloseSend(s1,m2). */
const SERVER_REPLY = hex("05 01 01 00 0d 01 02 00");

/** Reads from `sock` until `n` bytes arrived or it closed. */
function collect(sock: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let size = 0;
    const done = () => resolve(Buffer.concat(got));
    sock.on("data", (c: Buffer) => {
      got.push(c);
      size += c.length;
      if (size >= n) done();
    });
    sock.once("close", done);
  });
}

/** A raw server that hands each accepted socket to `onConn`. */
async function rawServer(onConn: (sock: net.Socket) => void): Promise<{ path: string; close(): Promise<void> }> {
  const socketPath = path.join(tempDir(), "raw.sock");
  const server = net.createServer((sock) => {
    sock.on("error", () => undefined);
    onConn(sock);
  });
  server.listen(socketPath);
  await once(server, "listening");
  return { path: socketPath, close: () => new Promise((r) => server.close(() => r())) };
}

describe("dRPC client side of the golden UpdateAppStatus exchange", () => {
  test("sends exactly Invoke, Message and CloseSend on stream 1 and accepts the golden reply", async () => {
    let written: Promise<Buffer> | undefined;
    const server = await rawServer((sock) => {
      written = collect(sock, CLIENT_REQUEST.length).then((b) => {
        sock.write(SERVER_REPLY);
        return b;
      });
    });
    try {
      const client = createClient(Agent, createDrpcTransport({ dial: () => dialUnix(server.path) }));
      const res = await client.updateAppStatus({ slug: "x", state: UpdateAppStatusRequest_AppStatusState.IDLE, message: "m" });
      assert.deepEqual(res, { $typeName: "coder.agent.v2.UpdateAppStatusResponse" });
      assert.deepEqual(await written, CLIENT_REQUEST);
    } finally {
      await server.close();
    }
  });

  test("turns an Error packet into a ConnectError with its code and text", async () => {
    const text = Buffer.from("Invalid state provided.");
    const code = Buffer.alloc(8);
    code.writeBigUInt64BE(3n);
    const server = await rawServer((sock) =>
      void collect(sock, CLIENT_REQUEST.length).then(() =>
        sock.write(Buffer.concat([hex(`07 01 01 ${(8 + text.length).toString(16)}`), code, text])),
      ),
    );
    try {
      const client = createClient(Agent, createDrpcTransport({ dial: () => dialUnix(server.path) }));
      await assert.rejects(
        client.updateAppStatus({ slug: "x", state: UpdateAppStatusRequest_AppStatusState.IDLE, message: "m" }),
        (err: ConnectError) => err.code === Code.InvalidArgument && err.rawMessage === "Invalid state provided.",
      );
    } finally {
      await server.close();
    }
  });

  test("any garbage reply ends the call in a ConnectError, never a hang", async () => {
    let reply = Buffer.alloc(0);
    const server = await rawServer((sock) => void collect(sock, CLIENT_REQUEST.length).then(() => sock.end(reply)));
    try {
      const client = createClient(Agent, createDrpcTransport({ dial: () => dialUnix(server.path) }));
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 64 }), async (bytes) => {
          reply = Buffer.from(bytes);
          try {
            await client.updateAppStatus({ slug: "x", state: UpdateAppStatusRequest_AppStatusState.IDLE, message: "m" });
          } catch (err) {
            assert.ok(err instanceof ConnectError, String(err));
          }
        }),
        { numRuns: 60 },
      );
    } finally {
      await server.close();
    }
  });
});

describe("dRPC client over a yamux stream", () => {
  test("a server that half-closes without a reply fails the call instead of leaving it hanging", async () => {
    const [a, b] = await tcpPair();
    const peer = new YamuxSession(b, {
      client: false,
      keepAliveIntervalMs: 0,
      onStream: (s) => {
        s.on("error", () => undefined);
        s.resume();
        s.end();
      },
    });
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    try {
      const client = createClient(Agent, createDrpcTransport({ dial: async () => session.open() }));
      await assert.rejects(client.updateAppStatus({ slug: "x" }), (err: ConnectError) => err.code === Code.Unavailable);
    } finally {
      session.close();
      peer.close();
      a.destroy();
      b.destroy();
    }
  });
});

describe("dRPC server hardening", () => {
  let socketPath: string;
  let server: net.Server;
  const seen: string[] = [];

  before(async () => {
    socketPath = path.join(tempDir(), "drpc.sock");
    const drpc = new DrpcServer();
    drpc.register(Agent, {
      updateAppStatus(req) {
        seen.push(req.slug);
        return {};
      },
    });
    server = net.createServer((c) => void drpc.serve(c));
    server.listen(socketPath);
    await once(server, "listening");
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  async function golden(): Promise<Buffer> {
    const sock = await dialUnix(socketPath);
    const reply = collect(sock, SERVER_REPLY.length);
    sock.write(CLIENT_REQUEST);
    const got = await reply;
    sock.destroy();
    return got;
  }

  test("ignores InvokeMetadata before the Invoke", async () => {
    const meta = hex("0a 07 0a 01 6b 12 02 76 31");
    const sock = await dialUnix(socketPath);
    const reply = collect(sock, SERVER_REPLY.length);
    sock.write(
      Buffer.concat([
        hex(`0f 01 01 ${meta.length.toString(16).padStart(2, "0")}`),
        meta,
        hex("03 01 02 25"),
        Buffer.from(NAME),
        hex("05 01 03 08 0a 01 78 10 01 1a 01 6d 0d 01 04 00"),
      ]),
    );
    assert.deepEqual(await reply, SERVER_REPLY);
    sock.destroy();
  });

  test("ends its side once the client half-closes after its call", async () => {
    const sock = await dialUnix(socketPath);
    const reply = collect(sock, Infinity);
    sock.end(CLIENT_REQUEST);
    assert.deepEqual(await reply, SERVER_REPLY);
  });

  test("random bytes close or stall only their own connection; others keep being served", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 256 }), async (bytes) => {
        const bad = await dialUnix(socketPath);
        bad.on("error", () => undefined);
        bad.write(Buffer.from(bytes));
        assert.deepEqual(await golden(), SERVER_REPLY);
        bad.destroy();
      }),
      { numRuns: 40 },
    );
  });

  test("a frame announcing more than 4 MiB closes the connection", async () => {
    const sock = await dialUnix(socketPath);
    const got = collect(sock, Infinity);
    sock.write(hex("05 01 01 81 80 80 02"));
    assert.equal((await got).length, 0);
  });
});
