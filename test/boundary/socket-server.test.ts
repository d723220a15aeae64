import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { encodeLogsFrame, type BoundaryFrameMessage } from "../../src/boundary/codec.js";
import { SocketServer } from "../../src/boundary/socket-server.js";
import { tempDir } from "../helpers/agentd.js";
import { closed, connect, logsRequest, silentLog, waitUntil, write } from "./harness.js";

describe("boundary socket server", () => {
  const dir = tempDir("agentd-socket-server-");
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a fault while handling a connection's frames closes that connection only; the daemon keeps serving", async () => {
    const received: string[] = [];
    let fail = true;
    const server = new SocketServer(
      path.join(dir, "b.sock"),
      {
        onMessages(messages: BoundaryFrameMessage[]) {
          if (fail) {
            fail = false;
            throw new Error("handler bug");
          }
          for (const m of messages) if (m.kind === "logs") received.push(m.batch.sessionId);
        },
        onConnectionsChanged() {},
        onRefused() {},
      },
      silentLog,
    );
    await server.listen();
    try {
      const first = await connect(path.join(dir, "b.sock"));
      const gone = closed(first);
      await write(first, encodeLogsFrame(logsRequest("a", 1, "first")));
      await gone;
      const second = await connect(path.join(dir, "b.sock"));
      await write(second, encodeLogsFrame(logsRequest("b", 1, "second")));
      await waitUntil(() => received.length === 1, "the next connection's frame");
      assert.deepEqual(received, ["second"]);
      second.destroy();
    } finally {
      await server.close();
    }
  });
});
