import assert from "node:assert/strict";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import { test } from "node:test";
import { agentSocketClient } from "../../src/agentsocket/client.js";
import { MAX_SOCKET_CONNECTIONS } from "../../src/agentsocket/socket-server.js";
import { startSocketPart } from "./fixtures.js";

const REFUSED = "agentd_agentsocket_connections_refused_total";

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath, () => resolve(conn));
    conn.once("error", reject);
  });
}

test(`a connection past ${MAX_SOCKET_CONNECTIONS} open ones is closed on arrival and counted in ${REFUSED}`, async () => {
  const { part, socketPath, dir, registry } = await startSocketPart();
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < MAX_SOCKET_CONNECTIONS; i++) held.push(await connect(socketPath));
    const extra = await connect(socketPath);
    extra.resume();
    await once(extra, "close");
    const metric = registry.getSingleMetric(REFUSED);
    assert.ok(metric, `${REFUSED} is registered`);
    assert.equal((await metric.get()).values[0]?.value, 1);
    held.pop()!.destroy();
    // Once a slot is free again, a new client is served.
    let answered = false;
    for (let attempt = 0; attempt < 200 && !answered; attempt++) {
      answered = await agentSocketClient(socketPath).ping({}).then(() => true, () => false);
      if (!answered) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(answered, "a client is served after a held connection closes");
  } finally {
    for (const c of held) c.destroy();
    await part.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
