// Unary UpdateAppStatus over the coderd link (agentd's CoderdUpstream:
// dRPC on a fresh yamux stream per call, yamux on a WebSocket) against the
// same in-memory service over Connect on HTTP/1.1, both on loopback and
// measured in the same run: calls/s and p50/p99 latency, one call at a time
// and 32 in flight.
import http from "node:http";
import { performance } from "node:perf_hooks";
import { createClient, type Client, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { Agent as AgentService, UpdateAppStatusRequest_AppStatusState } from "../gen/coder/agent/v2/agent_pb.js";
import { CoderdUpstream } from "../src/coderd/coderd-upstream.js";
import { startCoderdPeer } from "../src/coderd/peer.js";
import { createLogger } from "../src/log.js";

/** Wall time per measurement; 2 rounds of four measurements plus warm-up stay under two minutes. */
const MEASURE_MS = 4000;
/** Warm-up before each measurement (JIT, connection pools). */
const WARMUP_MS = 750;
/** Rounds, alternating the transports; each line keeps its best round, so load from elsewhere hurts both alike. */
const ROUNDS = 2;
/** Calls in flight for the concurrent measurement. */
const IN_FLIGHT = 32;

type AgentClient = Client<typeof AgentService>;

let received = 0;
/** The same in-memory service on both transports, so only the transports differ. */
const service: Partial<ServiceImpl<typeof AgentService>> = {
  updateAppStatus() {
    received++;
    return {};
  },
};
const request = { slug: "web", state: UpdateAppStatusRequest_AppStatusState.WORKING, message: "building" };

interface Result {
  rate: number;
  p50: number;
  p99: number;
}

async function run(client: AgentClient, inFlight: number, ms: number): Promise<Result> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await client.updateAppStatus(request);
      latencies.push(performance.now() - t);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = performance.now() - start;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { rate: (latencies.length * 1000) / elapsed, p50: at(0.5), p99: at(0.99) };
}

async function measure(client: AgentClient, inFlight: number): Promise<Result> {
  await run(client, inFlight, WARMUP_MS);
  return run(client, inFlight, MEASURE_MS);
}

function print(label: string, r: Result): void {
  console.log(
    `${label.padEnd(44)} ${r.rate.toFixed(0).padStart(7)} calls/s  p50 ${(r.p50 * 1000).toFixed(0).padStart(6)} µs  p99 ${(r.p99 * 1000).toFixed(0).padStart(6)} µs`,
  );
}

const log = createLogger("silent");
const peer = await startCoderdPeer({ token: "bench", service });
const upstream = new CoderdUpstream({ url: new URL(peer.url), token: "bench", log });
await upstream.start();
while (!upstream.isConnected()) await new Promise((r) => setTimeout(r, 10));

const connectServer = http.createServer(connectNodeAdapter({ routes: (router) => router.service(AgentService, service) }));
await new Promise<void>((r) => connectServer.listen(0, "127.0.0.1", r));
const port = (connectServer.address() as { port: number }).port;
const connect = createClient(
  AgentService,
  createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }),
);

try {
  const cases = [
    { label: "connect HTTP/1.1, sequential (baseline)", client: connect, inFlight: 1 },
    { label: "drpc/yamux/websocket, sequential", client: upstream.client, inFlight: 1 },
    { label: `connect HTTP/1.1, ${IN_FLIGHT} in flight (baseline)`, client: connect, inFlight: IN_FLIGHT },
    { label: `drpc/yamux/websocket, ${IN_FLIGHT} in flight`, client: upstream.client, inFlight: IN_FLIGHT },
  ];
  const best: Result[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, c] of cases.entries()) {
      const r = await measure(c.client, c.inFlight);
      if (!best[i] || r.rate > best[i].rate) best[i] = r;
    }
  }
  cases.forEach((c, i) => print(c.label, best[i]!));
  const [connectSeq, drpcSeq, connectPar, drpcPar] = best as [Result, Result, Result, Result];
  console.log(`drpc/connect rate ratio (sequential): ${(drpcSeq.rate / connectSeq.rate).toFixed(2)}`);
  console.log(`drpc/connect rate ratio (${IN_FLIGHT} in flight): ${(drpcPar.rate / connectPar.rate).toFixed(2)}`);
  console.log(`(${received} calls served in total; goal: both ratios >= 1.00)`);
} finally {
  await upstream.stop();
  await peer.dispose();
  connectServer.closeAllConnections();
  await new Promise<void>((r) => connectServer.close(() => r()));
}
