import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { websocketStream, WS_MAX_MESSAGE } from "../../src/coderd/websocket-stream.js";
import { YamuxSession } from "../../src/coderd/yamux/session.js";

describe("a WebSocket as a byte stream", () => {
  let server: http.Server;
  let wss: WebSocketServer;
  let url: string;
  /** Binary message sizes the server received, per connection. */
  let sizes: number[] = [];
  let serverSide: ((ws: WebSocket) => void) | undefined;

  before(async () => {
    server = http.createServer();
    wss = new WebSocketServer({ server, maxPayload: 4 << 20 });
    wss.on("connection", (ws) => {
      ws.on("message", (data: Buffer) => sizes.push(data.length));
      // Acts once the client has spoken, so the client's listeners are in place.
      const act = serverSide;
      if (act) ws.once("message", () => act(ws));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((r) => server.close(() => r()));
  });

  async function client(): Promise<WebSocket> {
    const ws = new WebSocket(url);
    await once(ws, "open");
    return ws;
  }

  test("sends writes as binary messages under 32 KiB (Go websocket's default read limit)", async () => {
    sizes = [];
    const ws = await client();
    const stream = websocketStream(ws);
    stream.write(Buffer.alloc(200 * 1024, 1));
    const total = 200 * 1024;
    for (let i = 0; i < 1000 && sizes.reduce((a, b) => a + b, 0) < total; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sizes.reduce((a, b) => a + b, 0), total);
    assert.ok(sizes.every((n) => n <= WS_MAX_MESSAGE && n < 32 << 10), JSON.stringify(sizes));
    stream.destroy();
  });

  test("carries yamux frames split across messages and packed into one", async () => {
    serverSide = undefined;
    wss.once("connection", (ws) => {
      new YamuxSession(websocketStream(ws), { client: false, keepAliveIntervalMs: 0, onStream: (s) => s.pipe(s) });
    });
    const ws = await client();
    const session = new YamuxSession(websocketStream(ws), { client: true, keepAliveIntervalMs: 0 });
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const s = session.open();
        const got: Buffer[] = [];
        s.on("data", (c: Buffer) => got.push(c));
        s.end(Buffer.alloc(100_000 + i, i));
        await once(s, "end");
        return Buffer.concat(got);
      }),
    );
    results.forEach((r, i) => assert.ok(r.equals(Buffer.alloc(100_000 + i, i))));
    session.close();
  });

  test("frames queued in one turn share messages, none over 32767 bytes, and a yamux peer reads them all", async () => {
    sizes = [];
    serverSide = undefined;
    wss.once("connection", (ws) => {
      new YamuxSession(websocketStream(ws), { client: false, keepAliveIntervalMs: 0, onStream: (s) => s.pipe(s) });
    });
    const ws = await client();
    const session = new YamuxSession(websocketStream(ws), { client: true, keepAliveIntervalMs: 0 });
    // 300 streams of 200 bytes in one turn: 300 × (12 + 12 + 200) bytes of frames, about 67 KB.
    const streams = Array.from({ length: 300 }, () => session.open());
    const echoes = streams.map(async (s) => {
      const got: Buffer[] = [];
      s.on("data", (c: Buffer) => got.push(c));
      await once(s, "end");
      return Buffer.concat(got);
    });
    streams.forEach((s, i) => s.end(Buffer.alloc(200, i % 256)));
    const results = await Promise.all(echoes);
    results.forEach((r, i) => assert.ok(r.equals(Buffer.alloc(200, i % 256)), `stream ${i}`));
    assert.ok(sizes.every((n) => n <= WS_MAX_MESSAGE), JSON.stringify(sizes));
    // Without packing these would be 900 messages (SYN, data, FIN per stream); packed they fill a few.
    const bytesOut = 300 * (12 + 12 + 200 + 12);
    assert.ok(sizes.length < 10, `${sizes.length} messages for ${bytesOut} bytes of frames`);
    session.close();
  });

  for (const [name, split] of [
    ["one byte per message", (b: Buffer) => [...b].map((x) => Buffer.from([x]))],
    ["all frames in one message", (b: Buffer) => [b]],
  ] as const) {
    test(`reads yamux frames sent ${name}`, async () => {
      const frames = Buffer.from(
        "000100020000000100000000" + "000000000000000100000002" + "6f6b" + "000100040000000100000000",
        "hex",
      );
      serverSide = (ws) => split(frames).forEach((m) => ws.send(m, { binary: true }));
      const ws = await client();
      const session = new YamuxSession(websocketStream(ws), { client: true, keepAliveIntervalMs: 0 });
      const s = session.open();
      const got: Buffer[] = [];
      s.on("data", (c: Buffer) => got.push(c));
      await once(s, "end");
      assert.equal(Buffer.concat(got).toString(), "ok");
      session.close();
      serverSide = undefined;
    });
  }

  test("a text message ends the stream with an error", async () => {
    serverSide = (ws) => ws.send("not binary");
    const ws = await client();
    const stream = websocketStream(ws);
    stream.write(Buffer.from("hello"));
    const [err] = await once(stream, "error");
    assert.match((err as Error).message, /text message/);
    serverSide = undefined;
  });

  test("the WebSocket closing ends the stream", async () => {
    serverSide = (ws) => ws.close(1000);
    const ws = await client();
    const stream = websocketStream(ws);
    stream.write(Buffer.from("hello"));
    stream.resume();
    await once(stream, "close");
    serverSide = undefined;
  });
});
