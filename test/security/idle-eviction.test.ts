import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { agentSocketClient } from "../../src/agentsocket/client.js";
import { AgentSocket } from "../../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { AppStatusLog } from "../../src/agentsocket/app-status-log.js";
import { agentSocketService } from "../../src/agentsocket/service.js";
import { AgentSocketServer, MAX_SOCKET_CONNECTIONS } from "../../src/agentsocket/socket-server.js";
import { UnitGraph } from "../../src/agentsocket/unit-graph.js";
import { encodeLogsFrame } from "../../src/boundary/codec.js";
import { MAX_CONNECTIONS } from "../../src/boundary/socket-server.js";
import { DrpcServer } from "../../src/drpc/server.js";
import { createLogger } from "../../src/log.js";
import { logsRequest, metric, waitUntil, withProxy, write } from "../boundary/harness.js";
import { RecordingUpstream } from "../agentsocket/fixtures.js";
import { tempDir } from "../helpers/agentd.js";

/** Short idle threshold for these tests; the daemon uses IDLE_EVICTION_MS (60 s). */
const TEST_IDLE_MS = 300;

/** Opens a unix connection, resolving once connected or closed by the server, whichever comes first. */
function open(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.on("error", () => {});
    socket.once("connect", () => resolve(socket));
    socket.once("close", () => resolve(socket));
  });
}

describe("idle boundary connections cannot lock others out", () => {
  it(`1,100 idle connections held open, then a new client still delivers its logs`, async () => {
    await withProxy({ idleEvictionMs: TEST_IDLE_MS }, async (h) => {
      const held: net.Socket[] = [];
      try {
        for (let i = 0; i < 1_100; i++) held.push(await open(h.socketPath));
        await waitUntil(async () => (await metric(h.registry, "agentd_boundary_connections")) === MAX_CONNECTIONS, "the cap to fill");
        await new Promise((r) => setTimeout(r, TEST_IDLE_MS + 50));
        const client = await open(h.socketPath);
        held.push(client);
        await write(client, encodeLogsFrame(logsRequest("fresh")));
        await waitUntil(() => h.upstream.logCount() === 1, "the new client's logs to reach the upstream");
        assert.match(JSON.stringify(h.upstream.received[0]!.logs[0]!.resource.value), /fresh/);
        assert.ok((await metric(h.registry, "agentd_boundary_connections_evicted_total")) >= 1);
        assert.ok((await metric(h.registry, "agentd_boundary_connections")) <= MAX_CONNECTIONS);
      } finally {
        held.forEach((s) => s.destroy());
      }
    });
  });
});

describe("idle agent socket connections cannot lock others out", () => {
  it(`${MAX_SOCKET_CONNECTIONS} idle connections, then a new client is served`, async () => {
    const dir = tempDir("agentsocket-idle-");
    const socketPath = path.join(dir, "agent.sock");
    const registry = new Registry();
    const log = createLogger("silent");
    const drpc = new DrpcServer({ log });
    drpc.register(AgentSocket, agentSocketService(new UnitGraph(), new RecordingUpstream(), log, new AppStatusLog()));
    const server = new AgentSocketServer(socketPath, drpc, log, registry, TEST_IDLE_MS);
    await server.listen();
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < MAX_SOCKET_CONNECTIONS; i++) held.push(await open(socketPath));
      await new Promise((r) => setTimeout(r, TEST_IDLE_MS + 50));
      await agentSocketClient(socketPath).ping({});
      const evicted = registry.getSingleMetric("agentd_agentsocket_connections_evicted_total");
      assert.equal((await evicted!.get()).values[0]?.value, 1);
    } finally {
      held.forEach((s) => s.destroy());
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
