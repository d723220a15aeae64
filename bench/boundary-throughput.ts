/**
 * Boundary log proxy throughput: 8 boundary-compatible clients in a child
 * process write as fast as the proxy reads; the proxy forwards into the
 * embedded upstream (SQLite) and into the coderd test peer (dRPC over yamux
 * over WebSocket). The baseline is the same clients writing to a unix socket
 * server that reads and discards. Run: node --import tsx bench/boundary-throughput.ts
 */
import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Registry } from "prom-client";
import {
  Agent as AgentService,
  ReportBoundaryLogsRequestSchema,
  ReportBoundaryLogsResponseSchema,
  type ReportBoundaryLogsRequest,
} from "../gen/coder/agent/v2/agent_pb.js";
import { AuditClient } from "../src/boundary/audit-client.js";
import type { BoundaryLogsClient } from "../src/boundary/forwarder.js";
import { BoundaryProxy } from "../src/boundary/proxy.js";
import { CoderdUpstream } from "../src/coderd/coderd-upstream.js";
import { embeddedAgentService } from "../src/coderd/embedded.js";
import { EmbeddedStore } from "../src/coderd/embedded-store.js";
import { createInProcessTransport } from "../src/coderd/in-process-transport.js";
import { startCoderdPeer } from "../src/coderd/peer.js";
import { createLogger } from "../src/log.js";

/** Concurrent boundary clients, as the goal states. */
const CLIENTS = 8;
/** How long the clients write in each run. */
const RUN_MS = 6_000;
/** The dRPC peer run is shorter: its backlog drains slowly and the whole script must stay bounded. */
const PEER_RUN_MS = 3_000;
/** Offered load of the embedded latency run, below saturation so queueing in socket buffers does not dominate. */
const PACED_LOGS_PER_SECOND = 20_000;
/** Offered load of the dRPC peer latency run, below that path's capacity. */
const PEER_PACED_LOGS_PER_SECOND = 10_000;
/** Paced clients write every this many milliseconds. */
const PACE_TICK_MS = 10;
/** Longest wait for the proxy to deliver its backlog after the clients stop. */
const DRAIN_TIMEOUT_MS = 60_000;
const GOAL_LOGS_PER_SECOND = 50_000;
const GOAL_RATIO = 0.5;

const log = createLogger("silent");
const self = fileURLToPath(import.meta.url);

/**
 * Child mode: CLIENTS audit clients write to `socket` for `ms` (as fast as
 * the proxy reads, or at `rate` logs/s in total), then print how many logs they sent.
 */
async function runClients(socket: string, ms: number, rate: number): Promise<void> {
  const clients = Array.from({ length: CLIENTS }, () => new AuditClient({ socketPath: socket }));
  const end = Date.now() + ms;
  const perClientPerTick = (rate / CLIENTS) * (PACE_TICK_MS / 1000);
  const counts = await Promise.all(
    clients.map(async (client) => {
      let sent = 0;
      const audit = async () => {
        await client.room();
        client.audit({ allowed: sent % 3 === 0, method: "GET", url: `https://example.com/p/${sent}`, matchedRule: "domain=example.com" });
        sent++;
      };
      if (rate > 0) {
        // A fixed quota per tick; a late tick is skipped, never made up with a burst.
        let owed = 0;
        for (let tick = Date.now(); tick < end; tick = Math.max(tick + PACE_TICK_MS, Date.now())) {
          owed += perClientPerTick;
          for (; owed >= 1; owed--) await audit();
          await new Promise((r) => setTimeout(r, Math.max(0, tick + PACE_TICK_MS - Date.now())));
        }
      } else {
        while (Date.now() < end) await audit();
      }
      await client.close();
      return sent;
    }),
  );
  process.stdout.write(JSON.stringify({ logs: counts.reduce((a, b) => a + b, 0) }) + "\n");
}

/** Starts the client child against `socket` and resolves with the logs it sent. */
function clientsChild(socket: string, ms: number, rate: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", self, "clients", socket, String(ms), String(rate)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`clients exited ${code}`));
      else resolve((JSON.parse(out.trim()) as { logs: number }).logs);
    });
  });
}

interface RunResult {
  logsPerSecond: number;
  p99Ms: number | undefined;
}

/** Baseline: the same clients into a server that reads every byte and throws it away. */
async function baseline(dir: string): Promise<RunResult> {
  const socket = path.join(dir, "discard.sock");
  let first = 0;
  let last = 0;
  const server = net.createServer((conn) => {
    conn.on("data", () => {
      last = performance.now();
      if (!first) first = last;
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const logs = await clientsChild(socket, RUN_MS, 0);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { logsPerSecond: logs / ((last - first) / 1000), p99Ms: undefined };
}

/** The proxy forwarding into `client`; `arrivals` is fed with each delivered batch. */
async function throughProxy(
  dir: string,
  name: string,
  client: BoundaryLogsClient,
  arrivals: { on(fn: (req: ReportBoundaryLogsRequest) => void): void },
  load: { ms: number; rate: number } = { ms: RUN_MS, rate: 0 },
): Promise<RunResult & { delivered: number; sent: number }> {
  const socket = path.join(dir, `${name}.sock`);
  const dataDir = path.join(dir, `${name}-data`);
  fs.mkdirSync(dataDir, { recursive: true });
  const proxy = new BoundaryProxy({
    socketPath: socket,
    dataDir,
    registry: new Registry(),
    log,
    client,
    spoolMaxBytes: 1 << 30,
  });
  await proxy.start();
  let delivered = 0;
  let first = 0;
  let last = 0;
  const latencies: number[] = [];
  arrivals.on((req) => {
    const now = Date.now();
    last = performance.now();
    if (!first) first = last;
    delivered += req.logs.length;
    // The last log of a batch was audited just before the frame was written.
    const sent = req.logs.at(-1)?.time;
    if (sent) latencies.push(now - timestampMs(sent));
  });
  const sent = await clientsChild(socket, load.ms, load.rate);
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (delivered < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await proxy.stop();
  latencies.sort((a, b) => a - b);
  return {
    logsPerSecond: delivered / ((last - first) / 1000),
    p99Ms: latencies[Math.floor(latencies.length * 0.99)],
    delivered,
    sent,
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-bench-boundary-"));
  try {
    const base = await baseline(dir);

    const noop = new EventEmitter<{ batch: [ReportBoundaryLogsRequest] }>();
    const intoNoop = await throughProxy(
      dir,
      "noop",
      {
        async reportBoundaryLogs(req) {
          noop.emit("batch", create(ReportBoundaryLogsRequestSchema, req));
          return create(ReportBoundaryLogsResponseSchema);
        },
      },
      { on: (fn) => noop.on("batch", fn) },
    );

    const store = EmbeddedStore.inDataDir(dir);
    const embedded = createClient(AgentService, createInProcessTransport(AgentService, embeddedAgentService(store)));
    const embeddedArrivals = { on: (fn: (req: ReportBoundaryLogsRequest) => void) => store.on("boundaryLogs", fn) };
    const intoEmbedded = await throughProxy(dir, "embedded", embedded, embeddedArrivals);
    store.removeAllListeners("boundaryLogs");
    const paced = await throughProxy(dir, "paced", embedded, embeddedArrivals, {
      ms: PEER_RUN_MS,
      rate: PACED_LOGS_PER_SECOND,
    });
    store.close();

    const peer = await startCoderdPeer({ token: "t", dataDir: path.join(dir, "peer") });
    const coderd = new CoderdUpstream({ url: new URL(peer.url), token: "t", log, registry: new Registry() });
    await coderd.start();
    while (!coderd.isConnected()) await new Promise((r) => setTimeout(r, 20));
    const intoPeer = await throughProxy(
      dir,
      "peer",
      coderd.client,
      { on: (fn) => peer.store.on("boundaryLogs", fn) },
      { ms: PEER_RUN_MS, rate: 0 },
    );
    peer.store.removeAllListeners("boundaryLogs");
    const peerPaced = await throughProxy(
      dir,
      "peer-paced",
      coderd.client,
      { on: (fn) => peer.store.on("boundaryLogs", fn) },
      { ms: PEER_RUN_MS, rate: PEER_PACED_LOGS_PER_SECOND },
    );
    await coderd.stop();
    await peer.dispose();

    const round = (n: number) => Math.round(n);
    console.log(`read-and-discard baseline: ${round(base.logsPerSecond)} logs/s from ${CLIENTS} clients`);
    console.log(
      `logs/s into embedded upstream: ${round(intoEmbedded.logsPerSecond)} (goal ≥ ${GOAL_LOGS_PER_SECOND}); delivered ${intoEmbedded.delivered} of ${intoEmbedded.sent}`,
    );
    console.log(
      `ratio vs read-and-discard baseline: ${(intoEmbedded.logsPerSecond / base.logsPerSecond).toFixed(2)} (goal ≥ ${GOAL_RATIO})`,
    );
    console.log(`p99 socket-to-upstream latency (embedded, saturated): ${intoEmbedded.p99Ms ?? "n/a"} ms`);
    console.log(
      `p99 socket-to-upstream latency (embedded, ${PACED_LOGS_PER_SECOND} logs/s offered): ${paced.p99Ms ?? "n/a"} ms`,
    );
    console.log(
      `logs/s into a no-op upstream (the proxy alone): ${round(intoNoop.logsPerSecond)}; ratio vs baseline ${(intoNoop.logsPerSecond / base.logsPerSecond).toFixed(2)}; p99 ${intoNoop.p99Ms ?? "n/a"} ms`,
    );
    console.log(
      `logs/s into the dRPC test peer: ${round(intoPeer.logsPerSecond)}; delivered ${intoPeer.delivered} of ${intoPeer.sent}`,
    );
    console.log(
      `ratio (dRPC test peer) vs read-and-discard baseline: ${(intoPeer.logsPerSecond / base.logsPerSecond).toFixed(2)}`,
    );
    console.log(`p99 socket-to-upstream latency (dRPC test peer, saturated): ${intoPeer.p99Ms ?? "n/a"} ms`);
    console.log(
      `p99 socket-to-upstream latency (dRPC test peer, ${PEER_PACED_LOGS_PER_SECOND} logs/s offered): ${peerPaced.p99Ms ?? "n/a"} ms; delivered ${peerPaced.delivered} of ${peerPaced.sent}`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "clients") await runClients(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
else await main();
