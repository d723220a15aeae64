import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import path from "node:path";
import type { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError, createClient, type CallOptions, type Transport } from "@connectrpc/connect";
import { ProcessService } from "../../gen/agentd/process/v1/process_pb.js";
import { Agent } from "../../gen/coder/agent/v2/agent_pb.js";
import { YamuxSession } from "../../src/coderd/yamux/session.js";
import { DrpcServer } from "../../src/drpc/server.js";
import { createDrpcTransport, type CallStream } from "../../src/drpc/transport.js";
import { tempDir } from "../helpers/agentd.js";
import { dialUnix, tcpPair } from "./sockets.js";

/** Generous: a late connection that is never closed fails its test instead of hanging the run. */
const WAIT = { timeout: 20_000 };

/** A connection the server side accepted: the bytes it received, and its end. */
interface Accepted {
  bytes(): number;
  ended: Promise<void>;
}

/** Accepted connections, handed out in arrival order. */
class AcceptQueue {
  private readonly ready: Accepted[] = [];
  private readonly waiting: ((a: Accepted) => void)[] = [];

  /** Records `conn`: counts what it receives, and notes its end or close. */
  add(conn: Duplex): void {
    let n = 0;
    conn.on("error", () => undefined);
    conn.on("data", (c: Buffer) => (n += c.length));
    const ended = new Promise<void>((resolve) => {
      conn.once("end", resolve);
      conn.once("close", resolve);
    });
    const accepted = { bytes: () => n, ended };
    const waiter = this.waiting.shift();
    if (waiter) waiter(accepted);
    else this.ready.push(accepted);
  }

  next(): Promise<Accepted> {
    const a = this.ready.shift();
    return a ? Promise.resolve(a) : new Promise((resolve) => this.waiting.push(resolve));
  }
}

/**
 * A dial held until the test opens it: stands for a dial still waiting (for
 * a socket, for yamux's open limit). `dialing` resolves once the transport dials.
 */
function gate(): { hold: () => Promise<void>; dialing: Promise<void>; open: () => void } {
  let open!: () => void;
  let dialed!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  const dialing = new Promise<void>((resolve) => (dialed = resolve));
  return {
    hold: () => {
      dialed();
      return wait;
    },
    dialing,
    open,
  };
}

/** Two ways of reaching a server: what the transport is given, and where the server side sees connections. */
interface Link {
  /** A transport whose dials each wait for `hold()` first. */
  transport(hold: () => Promise<void>): Transport;
  accepted: AcceptQueue;
}

/** A raw unix-socket server (the agent socket's kind of connection, a Duplex per call). */
async function unixLink(): Promise<Link & { close(): Promise<void> }> {
  const accepted = new AcceptQueue();
  const socketPath = path.join(tempDir(), "late.sock");
  const server = net.createServer((c) => accepted.add(c));
  server.listen(socketPath);
  await once(server, "listening");
  return {
    accepted,
    transport: (hold) => createDrpcTransport({ dial: () => hold().then(() => dialUnix(socketPath)) }),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Two yamux sessions (the coderd link's kind: a call stream per unary call, a yamux stream per server stream). */
async function yamuxLink(): Promise<Link & { close(): Promise<void> }> {
  const accepted = new AcceptQueue();
  const [a, b] = await tcpPair();
  const peer = new YamuxSession(b, { client: false, keepAliveIntervalMs: 0, onStream: (s) => accepted.add(s) });
  const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
  return {
    accepted,
    transport: (hold) =>
      createDrpcTransport({
        dial: () => hold().then(() => session.openStream()),
        dialCall: (): Promise<CallStream> => hold().then(() => session.openCall()),
      }),
    close: async () => {
      session.close();
      peer.close();
      a.destroy();
      b.destroy();
    },
  };
}

/** The code a call failed with. */
async function failure(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  assert.fail("the call succeeded");
}

/** Reads a server stream to its end. */
async function drain(messages: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of messages) void _;
}

/** How a call is ended while its dial still waits, and the code the caller must see. */
const ENDINGS = [
  { name: "deadline", code: Code.DeadlineExceeded, options: () => ({ options: { timeoutMs: 20 }, end: () => undefined }) },
  {
    name: "abort",
    code: Code.Canceled,
    options: () => {
      const abort = new AbortController();
      return { options: { signal: abort.signal }, end: () => abort.abort() };
    },
  },
] as const;

for (const [linkName, makeLink] of [
  ["unix socket", unixLink],
  ["yamux session", yamuxLink],
] as const) {
  describe(`a dRPC call over a ${linkName} whose dial completes after its deadline or abort`, () => {
    let link: Link & { close(): Promise<void> };
    before(async () => (link = await makeLink()));
    after(() => link.close());

    const kinds = [
      ["unary", (t: Transport, options: CallOptions) => createClient(Agent, t).updateAppStatus({ slug: "late" }, options)],
      ["server streaming", (t: Transport, options: CallOptions) => drain(createClient(ProcessService, t).follow({ id: "late" }, options))],
    ] as const;
    for (const ending of ENDINGS) {
      for (const [kind, makeCall] of kinds) {
        test(`${kind}, ${ending.name}: the caller hears ${Code[ending.code]} once; the late connection is closed unused`, WAIT, async () => {
          const dial = gate();
          const { options, end } = ending.options();
          const call = makeCall(link.transport(dial.hold), options);
          await dial.dialing;
          end();
          assert.equal(await failure(call), ending.code);
          dial.open();
          const late = await link.accepted.next();
          await late.ended;
          assert.equal(late.bytes(), 0, "nothing was sent on the late connection");
        });
      }
    }

    test("a dial that fails after the deadline leaves the deadline as the only outcome", WAIT, async () => {
      const calls = [
        (t: Transport) => createClient(Agent, t).updateAppStatus({ slug: "late" }, { timeoutMs: 20 }),
        (t: Transport) => drain(createClient(ProcessService, t).follow({ id: "late" }, { timeoutMs: 20 })),
      ];
      for (const makeCall of calls) {
        let fail!: (err: Error) => void;
        const held = new Promise<void>((_, reject) => (fail = reject));
        const call = makeCall(link.transport(() => held));
        assert.equal(await failure(call), Code.DeadlineExceeded);
        fail(new Error("refused"));
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  });
}

describe("a server-streaming dRPC call aborted after its replies began", () => {
  /** A Follow that sends one message, then waits until its call is aborted. */
  function followServer(aborted: (name: string) => void): DrpcServer {
    const drpc = new DrpcServer();
    drpc.register(ProcessService, {
      async *follow(req, ctx) {
        yield { data: Buffer.from(`${req.id}-first`) };
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        aborted(req.id);
      },
    });
    return drpc;
  }

  /** Follows `id`, aborting once the first message is in; returns the messages and the code the stream ended with. */
  async function followThenAbort(transport: Transport, id: string): Promise<{ got: string[]; code: Code }> {
    const abort = new AbortController();
    const got: string[] = [];
    try {
      for await (const m of createClient(ProcessService, transport).follow({ id }, { signal: abort.signal })) {
        got.push(Buffer.from(m.data).toString());
        abort.abort();
      }
    } catch (err) {
      return { got, code: ConnectError.from(err).code };
    }
    assert.fail(`the stream ended without an error after ${JSON.stringify(got)}`);
  }

  test("on a unix socket: the caller hears Canceled after the first message, and the server's handler is aborted", WAIT, async () => {
    const socketPath = path.join(tempDir(), "follow.sock");
    let handlerAborted!: () => void;
    const aborted = new Promise<void>((resolve) => (handlerAborted = resolve));
    const drpc = followServer(() => handlerAborted());
    const server = net.createServer((c) => void drpc.serve(c));
    server.listen(socketPath);
    await once(server, "listening");
    try {
      const result = await followThenAbort(createDrpcTransport({ dial: () => dialUnix(socketPath) }), "p");
      assert.deepEqual(result, { got: ["p-first"], code: Code.Canceled });
      await aborted;
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test("on a yamux session: the caller hears Canceled after the first message, and the peer sees the stream closed", WAIT, async () => {
    const [a, b] = await tcpPair();
    const drpc = followServer(() => undefined);
    const ended: Promise<void>[] = [];
    const peer = new YamuxSession(b, {
      client: false,
      keepAliveIntervalMs: 0,
      onStream: (s) => {
        ended.push(new Promise<void>((resolve) => s.once("end", resolve)));
        void drpc.serve(s);
      },
    });
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    try {
      const transport = createDrpcTransport({ dial: () => session.openStream(), dialCall: () => session.openCall() });
      const result = await followThenAbort(transport, "y");
      assert.deepEqual(result, { got: ["y-first"], code: Code.Canceled });
      assert.equal(ended.length, 1);
      await ended[0];
    } finally {
      session.close();
      peer.close();
      a.destroy();
      b.destroy();
    }
  });
});

test("a dialer that throws fails either call kind as Unavailable, with its message", async () => {
  const transport = createDrpcTransport({
    dial: () => {
      throw new Error("no route");
    },
  });
  const calls = [
    createClient(Agent, transport).updateAppStatus({ slug: "x" }),
    drain(createClient(ProcessService, transport).follow({ id: "x" })),
  ];
  for (const call of calls) {
    await assert.rejects(call, (err: unknown) => {
      const e = ConnectError.from(err);
      return e.code === Code.Unavailable && e.rawMessage === "dial: no route";
    });
  }
});
