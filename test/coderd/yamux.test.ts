import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { afterEach, describe, test } from "node:test";
import { INITIAL_WINDOW } from "../../src/coderd/yamux/frame.js";
import { LAZY_FRAME_MS, MAX_UNACKED_OPENS, YamuxSession } from "../../src/coderd/yamux/session.js";
import type { YamuxStream } from "../../src/coderd/yamux/stream.js";
import { tcpPair } from "../drpc/sockets.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

/** Collects bytes from a raw socket until at least `n` have arrived. */
function readBytes(sock: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      got.push(c);
      size += c.length;
      if (size >= n) {
        sock.off("data", onData);
        resolve(Buffer.concat(got));
      }
    };
    sock.on("data", onData);
    sock.once("error", reject);
  });
}

function readAll(stream: YamuxStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    stream.on("data", (c: Buffer) => got.push(c));
    stream.once("end", () => resolve(Buffer.concat(got)));
    stream.once("error", reject);
  });
}

/** Waits until `cond` holds, checking every 10 ms, for up to 10 s. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), "condition not met in time");
}

/** Streams outlive some tests; their teardown errors are not what those tests check. */
function quiet(stream: YamuxStream): YamuxStream {
  return stream.on("error", () => undefined);
}

const sockets: net.Socket[] = [];
async function pair(): Promise<[net.Socket, net.Socket]> {
  const p = await tcpPair();
  sockets.push(...p);
  return p;
}
afterEach(() => sockets.splice(0).forEach((s) => s.destroy()));

describe("yamux framing matches hashicorp/yamux", () => {
  test("a client opening a stream and writing 'hi' sends SYN window update then a data frame", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = quiet(session.open());
    stream.write("hi");
    const bytes = await readBytes(raw, 26);
    assert.deepEqual(
      bytes,
      hex("00 01 0001 00000001 00000000" + "00 00 0000 00000001 00000002" + "6869"),
    );
    assert.equal(quiet(session.open()).id, 3, "client stream ids are odd");
  });

  test("a client stream reads data split byte by byte, then ends on the server's FIN", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = quiet(session.open());
    const body = readAll(stream);
    const frames = hex("00 01 0002 00000001 00000000" + "00 00 0000 00000001 00000005" + "68656c6c6f" + "00 01 0004 00000001 00000000");
    for (const b of frames) raw.write(Buffer.from([b]));
    assert.equal((await body).toString(), "hello");
  });

  test("a FIN carried on a data frame ends the stream after its payload", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = quiet(session.open());
    const body = readAll(stream);
    raw.write(hex("00 00 0006 00000001 00000002 6f6b"));
    assert.equal((await body).toString(), "ok");
  });

  test("end() sends FIN as a window update", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = quiet(session.open());
    stream.end();
    const bytes = await readBytes(raw, 24);
    assert.deepEqual(bytes.subarray(12), hex("00 01 0004 00000001 00000000"));
  });

  test("destroying a stream sends its FIN with the next frames, or on its own within LAZY_FRAME_MS", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const first = quiet(session.open());
    const announced = await readBytes(raw, 12);
    assert.deepEqual(announced, hex("00 01 0001 00000001 00000000"));
    const chunks: Buffer[] = [];
    raw.on("data", (c: Buffer) => chunks.push(c));
    first.destroy();
    quiet(session.open());
    await until(() => Buffer.concat(chunks).length >= 24);
    assert.deepEqual(chunks.length, 1, "the FIN left in the same write as the next stream's SYN");
    assert.deepEqual(chunks[0], hex("00 01 0001 00000003 00000000" + "00 01 0004 00000001 00000000"));
    chunks.length = 0;
    const alone = quiet(session.open());
    await until(() => Buffer.concat(chunks).length >= 12);
    chunks.length = 0;
    const destroyedAt = Date.now();
    alone.destroy();
    await until(() => chunks.length > 0);
    assert.ok(Date.now() - destroyedAt >= LAZY_FRAME_MS - 2, "the lone FIN waited for company");
    assert.deepEqual(Buffer.concat(chunks), hex("00 01 0004 00000005 00000000"));
  });

  test("a server accepts a SYN with an ACK window update and sees the client's data", async () => {
    const [raw, b] = await pair();
    const accepted: YamuxStream[] = [];
    new YamuxSession(b, { client: false, keepAliveIntervalMs: 0, onStream: (s) => accepted.push(quiet(s)) });
    raw.write(hex("00 01 0001 00000001 00000000" + "00 00 0000 00000001 00000002 6869"));
    const bytes = await readBytes(raw, 12);
    assert.deepEqual(bytes, hex("00 01 0002 00000001 00000000"));
    assert.equal(accepted.length, 1);
    const [first] = await once(accepted[0]!, "data");
    assert.equal((first as Buffer).toString(), "hi");
  });

  test("a reader grants window back once it has taken half of it, in one flagless window update", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = quiet(session.open());
    let taken = 0;
    stream.on("data", (c: Buffer) => (taken += c.length));
    const half = INITIAL_WINDOW / 2;
    const data = (n: number) => {
      const h = Buffer.alloc(12);
      h.writeUInt32BE(1, 4);
      h.writeUInt32BE(n, 8);
      return Buffer.concat([h, Buffer.alloc(n, 0x61)]);
    };
    const sent = readBytes(raw, 24);
    raw.write(Buffer.concat([hex("00 01 0002 00000001 00000000"), data(half - 1)]));
    await until(() => taken === half - 1);
    raw.write(data(1));
    // The SYN, then 131072 bytes granted back at once: nothing was sent for the first 131071.
    assert.deepEqual(await sent, hex("00 01 0001 00000001 00000000" + "00 01 0000 00000001 00020000"));
  });

  test("frames for a stream it does not know are dropped without ending the session, as Go's yamux does", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    raw.write(hex("00 01 0000 00000063 00001000" + "00 00 0000 00000063 00000003 616263" + "00 02 0001 00000000 00000007"));
    assert.deepEqual(await readBytes(raw, 12), hex("00 02 0002 00000000 00000007"));
    assert.equal(session.closed, false);
  });

  test("a ping SYN is answered with a ping ACK echoing its opaque value", async () => {
    const [a, raw] = await pair();
    new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    raw.write(hex("00 02 0001 00000000 0000abcd"));
    assert.deepEqual(await readBytes(raw, 12), hex("00 02 0002 00000000 0000abcd"));
  });

  test("RST from the peer fails the stream", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = quiet(session.open());
    const failed = once(stream, "error");
    raw.write(hex("00 01 0008 00000001 00000000"));
    const [err] = await failed;
    assert.match((err as Error).message, /reset/);
    assert.equal(session.streamCount, 0);
  });

  test("Go Away stops new streams", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    raw.write(hex("00 03 0000 00000000 00000000"));
    await until(() => {
      try {
        quiet(session.open());
        return false;
      } catch (err) {
        return /not accepting/.test((err as Error).message);
      }
    });
  });

  test("after the peer's Go Away, closeWhenIdle ends the session once its last stream is done", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = quiet(session.open());
    const toldGoAway = once(session, "goAway");
    raw.write(hex("00 03 0000 00000000 00000000"));
    await toldGoAway;
    assert.equal(session.acceptsStreams, false);
    session.closeWhenIdle(60_000);
    stream.end();
    assert.equal(session.closed, false, "a half-closed stream keeps the session");
    const closed = once(session, "close");
    raw.write(hex("00 01 0004 00000001 00000000"));
    await closed;
  });

  test("a bad version closes the session with a protocol-error Go Away", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const closed = once(session, "close");
    raw.write(hex("01 00 0000 00000001 00000000"));
    assert.deepEqual(await readBytes(raw, 12), hex("00 03 0000 00000000 00000001"));
    await closed;
    assert.throws(() => session.open(), /shutdown/);
  });

  test("data beyond the receive window is a protocol error", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    quiet(session.open());
    const closed = once(session, "close");
    const big = Buffer.alloc(12);
    big.writeUInt32BE(1, 4);
    big.writeUInt32BE(INITIAL_WINDOW + 1, 8);
    raw.write(big);
    const [err] = await closed;
    assert.match((err as Error).message, /exceeds the window/);
  });

  test("a stream the peer never acknowledges closes the session", async () => {
    const [a, raw] = await pair();
    raw.resume();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0, streamOpenTimeoutMs: 100 });
    quiet(session.open());
    const [err] = await once(session, "close");
    assert.match((err as Error).message, /stream 1 was not acknowledged/);
  });

  test("an acknowledged stream is off the clock while a later unacknowledged one still times out", async () => {
    const [a, raw] = await pair();
    raw.resume();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0, streamOpenTimeoutMs: 200 });
    quiet(session.open());
    await new Promise((r) => setTimeout(r, 100));
    raw.write(hex("00 01 0002 00000001 00000000"));
    quiet(session.open());
    const [err] = await once(session, "close");
    assert.match((err as Error).message, /stream 3 was not acknowledged/);
  });

  test("a destroyed stream's delayed FIN going out does not take an unacknowledged stream off the clock", async () => {
    const [a, raw] = await pair();
    raw.resume();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0, streamOpenTimeoutMs: 300 });
    quiet(session.open());
    const other = quiet(session.open());
    raw.write(hex("00 01 0002 00000003 00000000"));
    await new Promise((r) => setTimeout(r, 20));
    other.destroy();
    const [err] = await once(session, "close");
    assert.match((err as Error).message, /stream 1 was not acknowledged/);
  });

  test("a destroyed stream whose peer never sends FIN is forgotten after the close timeout, delayed FINs or not", async () => {
    const [a, raw] = await pair();
    raw.resume();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0, streamCloseTimeoutMs: 200 });
    const first = quiet(session.open());
    const second = quiet(session.open());
    raw.write(hex("00 01 0002 00000001 00000000" + "00 01 0002 00000003 00000000"));
    await until(() => session.streamCount === 2);
    first.destroy();
    await new Promise((r) => setTimeout(r, LAZY_FRAME_MS * 2));
    second.destroy();
    await until(() => session.streamCount === 0);
    assert.equal(session.closed, false);
  });

  test("a stream whose peer never answers our FIN is reset and forgotten after the close timeout", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0, streamCloseTimeoutMs: 100 });
    const stream = quiet(session.open());
    const sent = readBytes(raw, 36);
    stream.end();
    assert.deepEqual(
      await sent,
      hex("00 01 0001 00000001 00000000" + "00 01 0004 00000001 00000000" + "00 01 0008 00000001 00000000"),
    );
    await until(() => session.streamCount === 0);
    assert.equal(session.closed, false);
  });

  test("openStream waits while 256 of its streams are unacknowledged and goes ahead on the next ACK", async () => {
    const [a, raw] = await pair();
    raw.resume();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const first = await Promise.all(Array.from({ length: MAX_UNACKED_OPENS }, () => session.openStream()));
    first.forEach(quiet);
    let opened = false;
    const waiting = session.openStream().then((s) => {
      opened = true;
      return quiet(s);
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(opened, false, "the 257th open waits");
    assert.equal(session.streamCount, MAX_UNACKED_OPENS);
    raw.write(hex("00 01 0002 00000001 00000000"));
    assert.equal((await waiting).id, 2 * MAX_UNACKED_OPENS + 1);
    session.close();
  });

  test("an unanswered keepalive ping closes the session", async () => {
    const [a] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 20, keepAliveTimeoutMs: 100 });
    const [err] = await once(session, "close");
    assert.match((err as Error).message, /keepalive timeout/);
  });
});

describe("a call stream (openCall) is the same stream on the wire", () => {
  test("request, reply, FIN each way: the bytes a Duplex stream would send, the reply bytes heard, then the end", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const call = await session.openCall();
    const heard: string[] = [];
    const ended = new Promise<Error | undefined>((resolve) =>
      call.listen({ data: (c) => heard.push(c.toString()), end: (err) => resolve(err) }),
    );
    // In two parts: they leave as the one Data frame a joined request makes.
    call.write([Buffer.from("h"), Buffer.from("i")]);
    assert.deepEqual(await readBytes(raw, 26), hex("00 01 0001 00000001 00000000" + "00 00 0000 00000001 00000002" + "6869"));
    raw.write(hex("00 00 0002 00000001 00000002 6f6b" + "00 01 0004 00000001 00000000"));
    assert.equal(await ended, undefined);
    assert.deepEqual(heard, ["ok"]);
    const fin = readBytes(raw, 12);
    call.close();
    assert.deepEqual(await fin, hex("00 01 0004 00000001 00000000"));
    await until(() => session.streamCount === 0);
  });

  test("a reset from the peer ends the call with an error; a call whose FIN goes unanswered is reset", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0, streamCloseTimeoutMs: 100 });
    const reset = await session.openCall();
    const ended = new Promise<Error | undefined>((resolve) => reset.listen({ data: () => undefined, end: resolve }));
    raw.write(hex("00 01 0008 00000001 00000000"));
    assert.match((await ended)?.message ?? "", /reset/);
    const sent = readBytes(raw, 36);
    const silent = await session.openCall();
    silent.close();
    assert.deepEqual(
      await sent,
      hex("00 01 0001 00000001 00000000" + "00 01 0001 00000003 00000000" + "00 01 0004 00000003 00000000"),
    );
    const rst = readBytes(raw, 12);
    assert.deepEqual(await rst, hex("00 01 0008 00000003 00000000"));
    await until(() => session.streamCount === 0);
  });

  test("a request larger than the peer's window waits for its grant, in frames of at most MAX_DATA_FRAME", async () => {
    const [a, raw] = await pair();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const call = await session.openCall();
    call.listen({ data: () => undefined, end: () => undefined });
    const size = INITIAL_WINDOW + 100;
    const frames = 5;
    const sent = readBytes(raw, 12 + INITIAL_WINDOW + 12 * frames);
    call.write([Buffer.alloc(size - 1, 7), Buffer.of(7)]);
    const before = await sent;
    assert.equal(before.length, 12 + INITIAL_WINDOW + 12 * frames, "the SYN and the window's worth, in 5 frames, nothing past it");
    const rest = readBytes(raw, 12 + 100);
    raw.write(hex("00 01 0000 00000001 00000064"));
    const tail = await rest;
    assert.deepEqual(tail.subarray(0, 12), hex("00 00 0000 00000001 00000064"));
    session.close();
  });

  test("a call whose session ended before anyone listened hears the end as soon as it listens", async () => {
    const [a, raw] = await pair();
    raw.resume();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const call = await session.openCall();
    session.close();
    let ended = false;
    call.listen({ data: () => undefined, end: () => (ended = true) });
    assert.equal(ended, true);
  });

  test("the session ending ends every open call", async () => {
    const [a, raw] = await pair();
    raw.resume();
    const session = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const call = await session.openCall();
    const ended = new Promise<Error | undefined>((resolve) => call.listen({ data: () => undefined, end: resolve }));
    raw.destroy();
    await ended;
    assert.equal(session.streamCount, 0);
  });
});

describe("yamux sessions talking to each other", () => {
  test("flow control carries 3 MiB each way on one stream, well past the 256 KiB window", async () => {
    const [a, b] = await pair();
    new YamuxSession(b, {
      client: false,
      keepAliveIntervalMs: 0,
      onStream: (s) => s.pipe(s),
    });
    const client = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = client.open();
    const payload = Buffer.alloc(3 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) & 0xff;
    const echoed = readAll(stream);
    stream.end(payload);
    assert.ok((await echoed).equals(payload));
  });

  test("a slow reader holds the sender at the window instead of buffering without bound", async () => {
    const [a, b] = await pair();
    let serverStream: YamuxStream | undefined;
    new YamuxSession(b, { client: false, keepAliveIntervalMs: 0, onStream: (s) => (serverStream = quiet(s)) });
    const client = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = quiet(client.open());
    stream.write(Buffer.alloc(1 << 20));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(serverStream);
    assert.ok(serverStream.readableLength <= INITIAL_WINDOW, `buffered ${serverStream.readableLength}`);
    let total = 0;
    serverStream.on("data", (c: Buffer) => (total += c.length));
    await until(() => total === 1 << 20);
  });

  test("many concurrent streams each get their own bytes back", async () => {
    const [a, b] = await pair();
    new YamuxSession(b, { client: false, keepAliveIntervalMs: 0, onStream: (s) => s.pipe(s) });
    const client = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const s = client.open();
        const body = readAll(s);
        s.end(`stream ${i}`);
        return (await body).toString();
      }),
    );
    assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => `stream ${i}`));
    await until(() => client.streamCount === 0);
  });

  test("pings round-trip between sessions", async () => {
    const [a, b] = await pair();
    new YamuxSession(b, { client: false, keepAliveIntervalMs: 0 });
    const client = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    assert.ok((await client.ping()) >= 0);
  });

  test("the transport closing fails open streams", async () => {
    const [a, b] = await pair();
    new YamuxSession(b, { client: false, keepAliveIntervalMs: 0, onStream: () => undefined });
    const client = new YamuxSession(a, { client: true, keepAliveIntervalMs: 0 });
    const stream = client.open();
    const failed = once(stream, "error");
    b.destroy();
    await failed;
    assert.equal(client.closed, true);
  });
});
