// Agent socket round trips as `coder exp sync` makes them: Ping and
// SyncStatus over dRPC directly on the unix socket, p50/p99, both with a fresh
// connection per call (the Go CLI dials once per command, makes its call and
// closes) and with calls in sequence on one kept connection (stream 1, 2, 3…,
// as a Go drpcconn numbers them). The server is the built daemon
// (`bin/agentd serve`) in its own process. The baseline, measured in the same
// run with the same client, is a raw Node unix-socket server, also in its own
// process, that answers the identical request bytes with the identical reply
// bytes, captured from a real exchange with the daemon. Goal: agentd's p50
// ≤ 1.5× the echo's. Run `make build` first.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { PingRequestSchema, SyncStatusRequestSchema } from "../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { agentSocketClient } from "../src/agentsocket/client.js";
import { encodePacket, Kind, PacketReader, type Packet } from "../src/drpc/wire.js";
import { startAgentd, tempDir } from "../test/helpers/agentd.js";

/** Calls per measurement; small enough for a loaded 2-core machine to finish in about a minute. */
const CALLS = 3000;
/** Calls before each measurement (JIT). */
const WARMUP = 500;
/** Rounds alternating agentd and the echo; each line keeps its best round, so load from elsewhere hurts both alike. */
const ROUNDS = 3;
/** The goal: agentd's p50 at most this many times the echo's. */
const GOAL_RATIO = 1.5;
/** Dependencies of the unit SyncStatus reads, so the reply carries a realistic list. */
const DEPENDENCIES = ["db", "cache", "queue"];

interface Rpc {
  label: string;
  name: string;
  request: Uint8Array;
}

function rpc<D extends DescMessage>(label: string, method: string, schema: D, init: MessageInitShape<D>): Rpc {
  return { label, name: `/coder.agentsocket.v1.AgentSocket/${method}`, request: toBinary(schema, create(schema, init)) };
}

/** What a Go drpcconn writes for one unary call on `stream`: Invoke, Message, CloseSend. */
function requestBytes(r: Rpc, stream: number): Buffer {
  return Buffer.concat([
    encodePacket({ kind: Kind.Invoke, streamId: stream, messageId: 1, data: Buffer.from(r.name) }),
    encodePacket({ kind: Kind.Message, streamId: stream, messageId: 2, data: r.request }),
    encodePacket({ kind: Kind.CloseSend, streamId: stream, messageId: 3, data: new Uint8Array(0) }),
  ]);
}

/** The reply packets re-framed for `stream` (only the stream id differs between streams). */
function replyBytes(packets: Packet[], stream: number): Buffer {
  return Buffer.concat(packets.map((p) => encodePacket({ ...p, streamId: stream })));
}

/** One real exchange with agentd on a fresh connection: the reply's packets, up to its CloseSend. */
function capture(socketPath: string, r: Rpc): Promise<Packet[]> {
  return new Promise((resolve, reject) => {
    const reader = new PacketReader();
    const packets: Packet[] = [];
    const conn = net.connect(socketPath, () => conn.write(requestBytes(r, 1)));
    conn.on("data", (chunk: Buffer) => {
      for (const p of reader.push(chunk)) {
        packets.push({ ...p, data: Buffer.from(p.data) });
        if (p.kind === Kind.Error) reject(new Error(`${r.label} failed: ${p.data.subarray(8).toString()}`));
        if (p.kind === Kind.CloseSend) {
          conn.destroy();
          resolve(packets);
        }
      }
    });
    conn.on("error", reject);
  });
}

/**
 * The echo, plain JavaScript run by `node` itself (no TypeScript loader), so
 * the baseline carries nothing but a unix-socket server: it knows the request
 * of each stream and answers it with its reply once all its bytes have
 * arrived. ECHO_SOCKET is where it listens; ECHO_FILE holds both lists as hex.
 */
const ECHO_SOURCE = `
import fs from "node:fs";
import net from "node:net";
const { requests, replies } = JSON.parse(fs.readFileSync(process.env.ECHO_FILE, "utf8"));
const req = requests.map((h) => Buffer.from(h, "hex"));
const rep = replies.map((h) => Buffer.from(h, "hex"));
const server = net.createServer((conn) => {
  let stream = 1;
  let pending = 0;
  conn.on("data", (chunk) => {
    pending += chunk.length;
    while (pending >= req[stream].length) {
      pending -= req[stream].length;
      conn.write(rep[stream]);
      stream++;
    }
  });
  conn.on("error", () => conn.destroy());
});
server.listen(process.env.ECHO_SOCKET, () => process.stdout.write("ready\\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

/** Starts the echo in its own process and resolves once it listens. */
async function startEcho(dir: string, name: string, requests: Buffer[], replies: Buffer[]): Promise<{ path: string; proc: ChildProcess }> {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ requests: requests.map((b) => b.toString("hex")), replies: replies.map((b) => b.toString("hex")) }));
  const socketPath = path.join(dir, `${name}.sock`);
  const proc = spawn(process.execPath, ["--input-type=module", "-e", ECHO_SOURCE], {
    env: { ...process.env, ECHO_SOCKET: socketPath, ECHO_FILE: file },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await once(proc.stdout!, "data");
  return { path: socketPath, proc };
}

/** One call on a fresh connection, timed from the dial to the last reply byte; the connection is then closed. */
function freshCall(socketPath: string, request: Buffer, reply: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let got = 0;
    const conn = net.connect(socketPath, () => conn.write(request));
    conn.on("data", (chunk: Buffer) => {
      got += chunk.length;
      if (got < reply.length) return;
      const ms = performance.now() - start;
      conn.destroy();
      resolve(ms);
    });
    conn.on("error", reject);
  });
}

/** A kept connection that makes calls in sequence, each on the next stream. */
class KeptConnection {
  private stream = 1;
  private got = 0;
  private done: (() => void) | undefined;
  private expected = 0;

  private constructor(private readonly conn: net.Socket) {
    conn.on("data", (chunk: Buffer) => {
      this.got += chunk.length;
      if (this.got >= this.expected) this.done?.();
    });
  }

  static open(socketPath: string): Promise<KeptConnection> {
    return new Promise((resolve, reject) => {
      const conn = net.connect(socketPath, () => resolve(new KeptConnection(conn)));
      conn.once("error", reject);
    });
  }

  /** Sends the next stream's request and resolves with the time until its whole reply arrived. */
  call(requests: Buffer[], replies: Buffer[]): Promise<number> {
    const stream = this.stream++;
    this.got = 0;
    this.expected = replies[stream]!.length;
    return new Promise((resolve) => {
      const start = performance.now();
      this.done = () => resolve(performance.now() - start);
      this.conn.write(requests[stream]!);
    });
  }

  close(): void {
    this.conn.destroy();
  }
}

interface Latency {
  p50: number;
  p99: number;
}

function quantiles(ms: number[]): Latency {
  ms.sort((a, b) => a - b);
  const at = (q: number) => (ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? NaN) * 1000;
  return { p50: at(0.5), p99: at(0.99) };
}

async function measureFresh(socketPath: string, request: Buffer, reply: Buffer): Promise<Latency> {
  for (let i = 0; i < WARMUP; i++) await freshCall(socketPath, request, reply);
  const ms: number[] = [];
  for (let i = 0; i < CALLS; i++) ms.push(await freshCall(socketPath, request, reply));
  return quantiles(ms);
}

async function measureKept(socketPath: string, requests: Buffer[], replies: Buffer[]): Promise<Latency> {
  const conn = await KeptConnection.open(socketPath);
  try {
    for (let i = 0; i < WARMUP; i++) await conn.call(requests, replies);
    const ms: number[] = [];
    for (let i = 0; i < CALLS; i++) ms.push(await conn.call(requests, replies));
    return quantiles(ms);
  } finally {
    conn.close();
  }
}

/** Checks that agentd's replies on a kept connection are byte for byte the ones the echo sends. */
async function verifyKept(socketPath: string, requests: Buffer[], replies: Buffer[]): Promise<void> {
  const conn = net.connect(socketPath);
  const got: Buffer[] = [];
  const want = Buffer.concat(replies.slice(1, 4));
  await new Promise<void>((resolve, reject) => {
    conn.on("data", (c: Buffer) => {
      got.push(c);
      if (Buffer.concat(got).length >= want.length) resolve();
    });
    conn.on("error", reject);
    conn.write(Buffer.concat(requests.slice(1, 4)));
  });
  conn.destroy();
  if (!Buffer.concat(got).equals(want)) throw new Error("agentd's replies on a kept connection differ from the captured ones");
}

function best(a: Latency | undefined, b: Latency): Latency {
  return a && a.p50 <= b.p50 ? a : b;
}

const fmt = (us: number) => `${us.toFixed(0).padStart(5)} µs`;

async function main(): Promise<void> {
  const dir = tempDir("agentsocket-bench-");
  const agentd = await startAgentd({ dir, env: { AGENTD_LOG_LEVEL: "info" } });
  const echoes: ChildProcess[] = [];
  try {
    const client = agentSocketClient(agentd.agentSocket);
    for (const dep of DEPENDENCIES) await client.syncWant({ unit: "web", dependsOn: dep });
    await client.syncStart({ unit: "db" });
    await client.syncComplete({ unit: "db" });
    const rpcs = [
      rpc("Ping", "Ping", PingRequestSchema, {}),
      rpc("SyncStatus", "SyncStatus", SyncStatusRequestSchema, { unit: "web" }),
    ];
    const streams = WARMUP + CALLS + 4;
    for (const r of rpcs) {
      const packets = await capture(agentd.agentSocket, r);
      const requests: Buffer[] = [Buffer.alloc(0)];
      const replies: Buffer[] = [Buffer.alloc(0)];
      for (let s = 1; s <= streams; s++) {
        requests.push(requestBytes(r, s));
        replies.push(replyBytes(packets, s));
      }
      await verifyKept(agentd.agentSocket, requests, replies);
      const echo = await startEcho(dir, `echo-${r.label}`, requests, replies);
      echoes.push(echo.proc);
      await report(r, agentd.agentSocket, echo.path, requests, replies);
    }
  } finally {
    for (const e of echoes) e.kill("SIGTERM");
    await agentd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Measures both servers in alternating rounds and prints their lines and the ratios. */
async function report(r: Rpc, agentdPath: string, echoPath: string, requests: Buffer[], replies: Buffer[]): Promise<void> {
  const result: Record<string, Latency | undefined> = {};
  for (let round = 0; round < ROUNDS; round++) {
    result.echoFresh = best(result.echoFresh, await measureFresh(echoPath, requests[1]!, replies[1]!));
    result.agentdFresh = best(result.agentdFresh, await measureFresh(agentdPath, requests[1]!, replies[1]!));
    result.echoKept = best(result.echoKept, await measureKept(echoPath, requests, replies));
    result.agentdKept = best(result.agentdKept, await measureKept(agentdPath, requests, replies));
  }
  const { echoFresh, agentdFresh, echoKept, agentdKept } = result as Record<string, Latency>;
  console.log(`${r.label}: request ${requests[1]!.length} bytes, reply ${replies[1]!.length} bytes`);
  for (const [mode, agentd, echo] of [
    ["fresh connection per call", agentdFresh!, echoFresh!],
    ["kept connection", agentdKept!, echoKept!],
  ] as const) {
    console.log(`  echo   ${mode.padEnd(26)} p50 ${fmt(echo.p50)}  p99 ${fmt(echo.p99)}`);
    console.log(`  agentd ${mode.padEnd(26)} p50 ${fmt(agentd.p50)}  p99 ${fmt(agentd.p99)}`);
    const ratio = agentd.p50 / echo.p50;
    console.log(
      `ratio: ${r.label} ${mode}, agentd/echo p50 = ${ratio.toFixed(2)}x (goal <= ${GOAL_RATIO}x: ${ratio <= GOAL_RATIO ? "met" : "not met"})`,
    );
  }
}

await main();
