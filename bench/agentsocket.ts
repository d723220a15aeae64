// Agent socket round trips: a SyncReady call over dRPC on the unix socket
// (a fresh connection per call, as Coder's CLI makes them) against the same
// service called in-process, measured in the same run.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createClient } from "@connectrpc/connect";
import { Registry } from "prom-client";
import { AgentSocket } from "../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { AgentSocketPart } from "../src/agentsocket/agent-socket.js";
import { agentSocketClient } from "../src/agentsocket/client.js";
import { EmbeddedUpstream } from "../src/coderd/embedded.js";
import { createInProcessTransport } from "../src/coderd/in-process-transport.js";
import { createLogger } from "../src/log.js";

/** Calls per measurement; small enough to finish in seconds on a loaded 2-core machine. */
const CALLS = 2000;
/** Units in the dependency chain each call reads readiness from. */
const CHAIN = 100;

async function time(label: string, call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 100; i++) await call();
  const start = performance.now();
  for (let i = 0; i < CALLS; i++) await call();
  const ms = performance.now() - start;
  console.log(`${label}: ${((ms * 1000) / CALLS).toFixed(1)} µs/call`);
  return ms;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentsocket-bench-"));
// SyncReady never reaches the upstream; any will do.
const upstream = new EmbeddedUpstream(dir, createLogger("silent"));
await upstream.start();
const part = new AgentSocketPart(path.join(dir, "agent.sock"), upstream, createLogger("silent"), new Registry());
await part.start();
try {
  for (let i = 1; i < CHAIN; i++) part.graph.want(`u${i}`, `u${i - 1}`);
  const inProcess = createClient(AgentSocket, createInProcessTransport(AgentSocket, part.service));
  const socket = agentSocketClient(path.join(dir, "agent.sock"));
  const req = { unit: `u${CHAIN - 1}` };
  const base = await time("in-process SyncReady (baseline)", () => inProcess.syncReady(req));
  const drpc = await time("unix socket dRPC SyncReady", () => socket.syncReady(req));
  console.log(`ratio: unix socket dRPC / in-process = ${(drpc / base).toFixed(2)}x (${CALLS} calls each)`);
} finally {
  await part.stop();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
