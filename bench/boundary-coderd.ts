/**
 * Boundary → coderd over the real link: `bin/agentd serve --coder-url`
 * forwards to `bin/agentd coderd-peer --boundary-stats` (a separate process
 * speaking WebSocket + yamux + dRPC, counting what arrives each second).
 * 8 clients in a child process write TagV2 frames of 10 logs, as boundary
 * does. Phases: idle, paced 10k logs/s right after start (cold: reported on
 * its own), paced 10k logs/s again (no flood; the goal's line), 4 s of maximum
 * input (warm-up, not reported), sustained maximum, a 15 s flood, paced 10k
 * logs/s right after it. agentd's CPU and RSS come
 * from /proc. The goals are absolute rates and latencies; the ratio lines
 * are delivered/offered in the same run (what the peer counted against what
 * the clients handed to their sockets), plus the flood's slowest second
 * against the sustained rate. A reference child times a fixed piece of
 * agentd's frame decoding four times a second through the sustained and
 * flood phases, so a second in which the machine itself ran slow shows as
 * such. There is no read-and-discard baseline: a
 * server that only reads the clients' sockets takes ~10M logs/s on this
 * machine, so a ratio against it says nothing about the link to coderd.
 * Needs `make build`. Run: node --import tsx bench/boundary-coderd.ts
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { decodeFrameMessage, encodeLogsFrame, FrameDecoder } from "../src/boundary/codec.js";
import type { BoundaryLogSecond } from "../src/coderd/peer-stats.js";

const AGENTD_BIN = fileURLToPath(new URL("../bin/agentd", import.meta.url));

/** Concurrent boundary clients, as the goal states. */
const CLIENTS = 8;
/** Logs per frame, as boundary batches them. */
const LOGS_PER_FRAME = 10;
const IDLE_MS = 3_000;
/** Maximum input before the sustained phase, not reported: the JIT settles on the hot path. */
const WARMUP_MS = 4_000;
const SUSTAINED_MS = 6_000;
const FLOOD_MS = 15_000;
const PACED_MS = 8_000;
const PACED_LOGS_PER_SECOND = 10_000;
const PACE_TICK_MS = 10;
/** Pause between phases, so one phase's tail does not count in the next. */
const SETTLE_MS = 2_000;
/** How often the machine reference times its fixed work, and how many passes over its chunk of frames each time (~2–4 ms here). */
const REFERENCE_EVERY_MS = 250;
const REFERENCE_PASSES = 40;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;
const GOAL_SUSTAINED = 50_000;
const GOAL_FLOOD_RATIO = 0.8;
const GOAL_P99_AFTER_FLOOD_MS = 1_000;
const GOAL_P99_NO_FLOOD_MS = 20;
const GOAL_IDLE_RSS_MIB = 60;
const GOAL_PEAK_RSS_MIB = 120;

const self = fileURLToPath(import.meta.url);

/** A frame of 10 logs; `timed` logs carry the time they were written (latency is measured on those only). */
function frame(session: string, n: number, timed: boolean): Buffer {
  const now = Date.now();
  return encodeLogsFrame({
    sessionId: session,
    logs: Array.from({ length: LOGS_PER_FRAME }, (_, i) => ({
      allowed: i % 3 === 0,
      ...(timed ? { time: timestampFromMs(now) } : {}),
      sequenceNumber: n * LOGS_PER_FRAME + i,
      resource: {
        case: "httpRequest" as const,
        value: { method: "GET", url: `https://example.com/p/${n}/${i}`, matchedRule: i % 3 === 0 ? "domain=example.com" : "" },
      },
    })),
  });
}

function connectTo(socket: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket, () => resolve(conn));
    conn.once("error", reject);
  });
}

/** Child mode `flood`: each client writes pre-encoded frames (untimed) as fast as the socket takes them. */
async function flood(socket: string, ms: number): Promise<number> {
  const frames = Array.from({ length: 64 }, (_, n) => frame("flood", n, false));
  const chunk = Buffer.concat(frames);
  const logsPerChunk = frames.length * LOGS_PER_FRAME;
  const end = Date.now() + ms;
  const counts = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const conn = await connectTo(socket);
      let logs = 0;
      await new Promise<void>((resolve) => {
        const pump = () => {
          while (Date.now() < end) {
            logs += logsPerChunk;
            if (!conn.write(chunk)) return void conn.once("drain", pump);
          }
          resolve();
        };
        pump();
      });
      conn.destroy();
      return logs;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** Child mode `paced`: `rate` logs/s in total, in timed frames written every PACE_TICK_MS. */
async function paced(socket: string, ms: number, rate: number): Promise<number> {
  const perClientPerTick = rate / CLIENTS / (1000 / PACE_TICK_MS) / LOGS_PER_FRAME;
  const end = Date.now() + ms;
  const counts = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const conn = await connectTo(socket);
      let owed = 0;
      let n = 0;
      for (let tick = Date.now(); tick < end; tick = Math.max(tick + PACE_TICK_MS, Date.now())) {
        owed += perClientPerTick;
        for (; owed >= 1; owed--) conn.write(frame(`paced-${c}`, n++, true));
        await new Promise((r) => setTimeout(r, Math.max(0, tick + PACE_TICK_MS - Date.now())));
      }
      await new Promise<void>((resolve) => conn.end(resolve));
      return n * LOGS_PER_FRAME;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * Child mode `reference`: the machine's own speed, second by second. Every
 * REFERENCE_EVERY_MS it times a fixed piece of agentd's hot path (its frame
 * decoder and request scan over one chunk of 64 frames) and prints, at the
 * end, each timing as [ms since the epoch, ns per frame]. On a shared VM the
 * same work can take twice as long from one second to the next; this tells
 * such a second from one where agentd fell behind for its own reasons.
 */
async function reference(ms: number): Promise<void> {
  const chunk = Buffer.concat(Array.from({ length: 64 }, (_, n) => frame("reference", n, true)));
  let logs = 0;
  const pass = () => {
    const decoder = new FrameDecoder();
    decoder.push(chunk);
    for (let f = decoder.next(); f; f = decoder.next()) {
      const message = decodeFrameMessage(f);
      if (message.kind === "logs") logs += message.batch.logCount;
    }
  };
  for (let i = 0; i < 20 * REFERENCE_PASSES; i++) pass(); // JIT warm-up
  const samples: [number, number][] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // CPU time, not wall time: a timing that the scheduler cut short to run agentd or the peer would measure the sharing, not the machine.
    const start = process.cpuUsage();
    for (let i = 0; i < REFERENCE_PASSES; i++) pass();
    const used = process.cpuUsage(start);
    samples.push([Date.now(), ((used.user + used.system) * 1000) / (64 * REFERENCE_PASSES)]);
    await new Promise((r) => setTimeout(r, REFERENCE_EVERY_MS));
  }
  if (logs === 0) throw new Error("reference decoded no logs");
  process.stdout.write(JSON.stringify(samples) + "\n");
}

/** Runs this script as a child in `mode` and resolves with the JSON it prints. */
function child<T>(mode: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", self, mode, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    proc.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    proc.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim()) as T) : reject(new Error(`${mode} child exited ${code}`))));
  });
}

/** The median of `values` (NaN when empty). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[sorted.length >> 1]!;
}

/** What a client child did: logs written, and when it started and stopped writing (ms since the epoch). */
interface Written {
  logs: number;
  start: number;
  end: number;
}

/** Child mode: runs `fn` and prints what it wrote, timed from the moment the clients connect. */
async function report(fn: () => Promise<number>): Promise<void> {
  const start = Date.now();
  const logs = await fn();
  process.stdout.write(JSON.stringify({ logs, start, end: Date.now() }) + "\n");
}

/** Runs the client child and resolves with what it wrote. */
function clients(mode: "flood" | "paced", socket: string, ms: number, rate = 0): Promise<Written> {
  return child<Written>(mode, [socket, String(ms), String(rate)]);
}

/**
 * The command and arguments that run `bin/agentd` with `args`: as installed,
 * its launcher line starts node with the daemon's V8 flags. With
 * BENCH_AGENTD_NODE_ARGS (or BENCH_PEER_NODE_ARGS for the peer), node is
 * started here with those flags instead (add the launcher's to compare like
 * with like), e.g. "--max-semi-space-size=1 --cpu-prof --cpu-prof-dir=/tmp/p" to profile it.
 */
function agentdCommand(who: "AGENTD" | "PEER", args: string[]): [string, string[]] {
  const extra = (process.env[`BENCH_${who}_NODE_ARGS`] ?? "").split(" ").filter(Boolean);
  return extra.length > 0 ? [process.execPath, [...extra, AGENTD_BIN, ...args]] : [AGENTD_BIN, args];
}

/** `bin/agentd serve --coder-url` with its sockets and data dir in `dir`; resolves once it has started. */
async function startAgentd(dir: string, coderUrl: string): Promise<Agentd> {
  const boundarySocket = path.join(dir, "boundary.sock");
  const args = ["serve", "--http-addr", "127.0.0.1:0", "--data-dir", path.join(dir, "data"), "--boundary-socket", boundarySocket];
  args.push("--agent-socket", path.join(dir, "agent.sock"), "--coder-url", coderUrl, "--token", "t");
  const [command, argv] = agentdCommand("AGENTD", args);
  const proc = spawn(command, argv, {
    env: { ...process.env, AGENTD_LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let pending = "";
  let port = 0;
  await new Promise<void>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`agentd exited ${code}`)));
    proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const parsed = JSON.parse(line) as { msg?: string; addr?: { port: number } };
        if (parsed.msg === "http server listening") port = parsed.addr!.port;
        if (parsed.msg === "agentd started") resolve();
      }
    });
  });
  return { proc, url: `http://127.0.0.1:${port}`, boundarySocket };
}

interface Agentd {
  proc: ChildProcess;
  url: string;
  boundarySocket: string;
}

/** The peer in its own process; its per-second lines are collected. */
async function startPeer(): Promise<{ proc: ChildProcess; url: string; seconds: BoundaryLogSecond[] }> {
  // As installed too (it is an agentd command), so the peer's garbage collection competes no more for the cores than agentd's.
  const [command, argv] = agentdCommand("PEER", ["coderd-peer", "--http-addr", "127.0.0.1:0", "--token", "t", "--boundary-stats"]);
  const proc = spawn(command, argv, { stdio: ["ignore", "pipe", "inherit"] });
  const seconds: BoundaryLogSecond[] = [];
  let pending = "";
  const url = await new Promise<string>((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`coderd-peer exited ${code}`)));
    proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const parsed = JSON.parse(line) as { url?: string } & BoundaryLogSecond;
        if (parsed.url) resolve(parsed.url);
        else seconds.push(parsed);
      }
    });
  });
  return { proc, url, seconds };
}

/** agentd's CPU seconds so far and its resident and peak resident memory in MiB. */
function usage(pid: number): { cpuSeconds: number; rssMiB: number; hwmMiB: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { cpuSeconds, rssMiB: kib("VmRSS") / 1024, hwmMiB: kib("VmHWM") / 1024 };
}

/** What agentd's own /metrics says its memory is made of, in MiB. */
interface MemorySample {
  rss: number;
  heapNew: number;
  heapOld: number;
  heapTotal: number;
  external: number;
}

/** Samples agentd's /metrics every `everyMs` and keeps the sample taken at the highest RSS. */
function memorySampler(url: string, everyMs: number): { stop(): MemorySample | undefined } {
  let top: MemorySample | undefined;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void fetch(`${url}/metrics`)
      .then((res) => res.text())
      .then((text) => {
        const value = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? 0) / 2 ** 20;
        const sample: MemorySample = {
          rss: value("process_resident_memory_bytes"),
          heapNew: value('nodejs_heap_space_size_total_bytes{space="new"}'),
          heapOld: value('nodejs_heap_space_size_total_bytes{space="old"}'),
          heapTotal: value("nodejs_heap_size_total_bytes"),
          external: value("nodejs_external_memory_bytes"),
        };
        if (!top || sample.rss > top.rss) top = sample;
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return top;
    },
  };
}

/** The per-second lines that ended within [from, to]. */
function within(seconds: BoundaryLogSecond[], from: number, to: number): BoundaryLogSecond[] {
  return seconds.filter((s) => s.at > from && s.at <= to);
}

/** The p-quantile of the latency histograms of `seconds`, in ms. */
function quantile(seconds: BoundaryLogSecond[], p: number): number | undefined {
  const hist = new Map<number, number>();
  for (const s of seconds) for (const [ms, n] of Object.entries(s.latencyMs)) hist.set(Number(ms), (hist.get(Number(ms)) ?? 0) + n);
  const total = [...hist.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  let seen = 0;
  for (const ms of [...hist.keys()].sort((a, b) => a - b)) {
    seen += hist.get(ms)!;
    if (seen >= p * total) return ms;
  }
  return undefined;
}

/** Sends SIGTERM and waits for the exit. */
async function stop(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  await exited;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitConnected(agentd: Agentd): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const ready = (await (await fetch(`${agentd.url}/readyz`)).json()) as { checks: Record<string, boolean> };
    if (ready.checks.coderd) return;
    await sleep(50);
  }
  throw new Error("agentd never connected to the peer");
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-bench-coderd-"));
  let peer: Awaited<ReturnType<typeof startPeer>> | undefined;
  let agentd: Agentd | undefined;
  try {
    peer = await startPeer();
    agentd = await startAgentd(dir, peer.url);
    const pid = agentd.proc.pid!;
    await waitConnected(agentd);
    await sleep(IDLE_MS);
    const idle = usage(pid);
    const seconds = peer.seconds;

    const pacedPhase = async () => {
      const before = usage(pid);
      const written = await clients("paced", agentd!.boundarySocket, PACED_MS, PACED_LOGS_PER_SECOND);
      const sent = written.logs;
      await sleep(SETTLE_MS);
      const cpu = usage(pid).cpuSeconds - before.cpuSeconds;
      const got = within(seconds, written.start, Date.now());
      const delivered = got.reduce((n, s) => n + s.logs, 0);
      return { sent, delivered, got, cpuPerLog: cpu / Math.max(1, delivered) };
    };
    // The first paced seconds after start run cold (JIT, lazily loaded code): reported on their own line.
    const cold = await pacedPhase();
    const quiet = await pacedPhase();

    const maxPhase = async (ms: number, settleMs: number) => {
      const before = usage(pid);
      // Each second's CPU of agentd and the peer (cores), to tell a slow second's cause.
      const cpuSeconds: string[] = [];
      let last = [before.cpuSeconds, usage(peer!.proc.pid!).cpuSeconds];
      const ticker = setInterval(() => {
        const now = [usage(pid).cpuSeconds, usage(peer!.proc.pid!).cpuSeconds];
        cpuSeconds.push(`${(now[0]! - last[0]!).toFixed(2)}/${(now[1]! - last[1]!).toFixed(2)}`);
        last = now;
      }, 1000);
      const written = await clients("flood", agentd!.boundarySocket, ms);
      clearInterval(ticker);
      const sent = written.logs;
      await sleep(settleMs);
      const cpu = usage(pid).cpuSeconds - before.cpuSeconds;
      // Whole seconds inside the phase, leaving out the first (ramp-up) and the one cut by its end.
      const got = within(seconds, written.start + 1000, written.end);
      const rates = got.map((s) => s.logs);
      const peerBusy = got.map((s) => `${Math.round(100 * s.busy)}%`);
      const delivered = within(seconds, written.start, Date.now()).reduce((n, s) => n + s.logs, 0);
      return { sent, delivered, rates, ends: got.map((s) => s.at), cpuPerLog: cpu / Math.max(1, delivered), cpuSeconds, peerBusy };
    };
    const sampler = memorySampler(agentd.url, 500);
    const machine = child<[number, number][]>("reference", ["", String(WARMUP_MS + SUSTAINED_MS + FLOOD_MS + 2 * SETTLE_MS + 2_000)]);
    machine.catch(() => undefined); // awaited after the flood; a failure then ends the run through the cleanup below
    const peerBefore = usage(peer.proc.pid!).cpuSeconds;
    // A daemon runs for hours: the rates compared are those of a warmed-up one (its first seconds are the cold phase's line).
    await maxPhase(WARMUP_MS, SETTLE_MS);
    const sustained = await maxPhase(SUSTAINED_MS, SETTLE_MS);
    const peerCpuPerLog = (usage(peer.proc.pid!).cpuSeconds - peerBefore) / Math.max(1, sustained.delivered);
    const sustainedRate = sustained.rates.reduce((a, b) => a + b, 0) / Math.max(1, sustained.rates.length);
    // The paced phase starts as soon as the flood stops, backlog or not.
    const floodPhase = await maxPhase(FLOOD_MS, 0);
    const peak = usage(pid);
    const peakSample = sampler.stop();
    const timings = await machine;
    // The reference's speed over the second that ended at `at` (ns per frame; NaN without a timing).
    const refNs = (at: number) => median(timings.filter(([t]) => t > at - 1000 && t <= at).map(([, ns]) => ns));
    const refSustained = median(sustained.ends.map(refNs).filter((ns) => !Number.isNaN(ns)));
    const refFlood = floodPhase.ends.map((at) => refSustained / refNs(at));
    const after = await pacedPhase();
    // The backlog is gone from the first second whose own p99 is within the goal.
    const clearAt = after.got.findIndex((s) => (quantile([s], 0.99) ?? 0) <= GOAL_P99_AFTER_FLOOD_MS);
    const afterClear = clearAt < 0 ? [] : after.got.slice(clearAt);

    const minFlood = Math.min(...floodPhase.rates);
    const mib = (n: number) => n.toFixed(1);
    const us = (s: number) => (s * 1e6).toFixed(2);
    const r = Math.round;
    const ratio = (phase: { sent: number; delivered: number }) => (phase.delivered / Math.max(1, phase.sent)).toFixed(2);
    console.log(
      `sustained delivery to coderd (separate-process peer): ${r(sustainedRate)} logs/s (goal ≥ ${GOAL_SUSTAINED}); delivered/offered ${ratio(sustained)}`,
    );
    console.log(
      `flood ${FLOOD_MS / 1000} s: per-second delivery ${floodPhase.rates.join(", ")}; minimum ${r(minFlood)} logs/s = ${(minFlood / sustainedRate).toFixed(2)} of sustained (goal ≥ ${GOAL_FLOOD_RATIO})`,
    );
    console.log(`flood per-second CPU, agentd/peer (cores; the first is ramp-up): ${floodPhase.cpuSeconds.join(", ")}`);
    console.log(
      `machine reference (a fixed piece of agentd's frame decoding, timed ${1000 / REFERENCE_EVERY_MS} times a second in its own process): its speed each flood second as a share of its speed in the sustained phase: ${refFlood.map((x) => (Number.isNaN(x) ? "-" : x.toFixed(2))).join(", ")}`,
    );
    // Each flood second's delivery over what the machine could do that second, against sustained: informational, the goal is the line above.
    const perMachine = floodPhase.rates.map((rate, i) => rate / sustainedRate / refFlood[i]!).filter((x) => !Number.isNaN(x));
    console.log(
      `flood minimum per machine speed (each second's delivery / sustained, divided by the reference's speed that second; informational): ${perMachine.length > 0 ? Math.min(...perMachine).toFixed(2) : "n/a"}`,
    );
    // Well under 100%, the peer waited for agentd: agentd set the pace, not the peer.
    console.log(`flood per-second busy share of the peer's event loop: ${floodPhase.peerBusy.join(", ")}`);
    console.log(
      `paced ${PACED_LOGS_PER_SECOND} logs/s, no flood: p50 ${quantile(quiet.got, 0.5) ?? "n/a"} ms, p99 ${quantile(quiet.got, 0.99) ?? "n/a"} ms (goal ≤ ${GOAL_P99_NO_FLOOD_MS}); per-second p99 ${quiet.got.map((s) => quantile([s], 0.99) ?? "-").join(", ")} ms; delivered/offered ${ratio(quiet)} (${quiet.delivered} of ${quiet.sent})`,
    );
    console.log(
      `paced ${PACED_LOGS_PER_SECOND} logs/s right after start (cold daemon): p50 ${quantile(cold.got, 0.5) ?? "n/a"} ms, p99 ${quantile(cold.got, 0.99) ?? "n/a"} ms; per-second p99 ${cold.got.map((s) => quantile([s], 0.99) ?? "-").join(", ")} ms; CPU per log ${us(cold.cpuPerLog)} µs`,
    );
    console.log(
      `paced ${PACED_LOGS_PER_SECOND} logs/s after the flood: backlog gone after ${clearAt < 0 ? "never" : `${clearAt} s`}; then p50 ${quantile(afterClear, 0.5) ?? "n/a"} ms, p99 ${quantile(afterClear, 0.99) ?? "n/a"} ms (goal ≤ ${GOAL_P99_AFTER_FLOOD_MS}); over the whole phase p99 ${quantile(after.got, 0.99) ?? "n/a"} ms`,
    );
    console.log(
      `agentd CPU per delivered log: ${us(quiet.cpuPerLog)} µs at ${PACED_LOGS_PER_SECOND} logs/s; ${us(sustained.cpuPerLog)} µs sustained; ${us(floodPhase.cpuPerLog)} µs in the flood`,
    );
    console.log(`coderd peer CPU per received log (sustained phase): ${us(peerCpuPerLog)} µs`);
    console.log(
      `agentd RSS: idle ${mib(idle.rssMiB)} MiB (goal ≤ ${GOAL_IDLE_RSS_MIB}); peak ${mib(peak.hwmMiB)} MiB (goal ≤ ${GOAL_PEAK_RSS_MIB})`,
    );
    if (peakSample) {
      const m = peakSample;
      console.log(
        `agentd memory at the highest sampled RSS (${mib(m.rss)} MiB, /metrics every 500 ms in the sustained and flood phases): V8 heap ${mib(m.heapTotal)} MiB (new space ${mib(m.heapNew)}, old space ${mib(m.heapOld)}), external ${mib(m.external)} MiB`,
      );
    }
    console.log(`delivered/offered: sustained ${sustained.delivered}/${sustained.sent}, flood ${floodPhase.delivered}/${floodPhase.sent} = ${ratio(floodPhase)} (offered = handed to the clients' sockets; with backpressure the rest was still queued there when the clients closed; the flood count stops when the next phase starts)`);
  } finally {
    await stop(agentd?.proc);
    await stop(peer?.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, socket, ms, rate] = process.argv.slice(2);
if (mode === "flood") await report(() => flood(socket!, Number(ms)));
else if (mode === "paced") await report(() => paced(socket!, Number(ms), Number(rate)));
else if (mode === "reference") await reference(Number(ms));
else await main();
