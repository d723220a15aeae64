/**
 * Output capture throughput: a child writes 1 GiB to stdout through the
 * process manager (one pipe for stdout and stderr, into the head/tail
 * buffer, metrics, exit handling) against a baseline that gives the same
 * command the same kind of pipe (a FIFO's write end) and reads it in Node
 * with ordinary `data` events, discarding every chunk. Runs alternate so both
 * sides of a pair see the same machine load; the ratio is the median of the
 * per-pair ratios. `head` writes 8 KiB at a time, so this also measures
 * per-chunk overhead. RSS is sampled during each run. For reference, the
 * socket pair child_process gives a child for `stdio: "pipe"` is measured too.
 * Run: node --import tsx bench/process-capture.ts
 */
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Registry } from "prom-client";
import { createLogger } from "../src/log.js";
import { ProcessManager } from "../src/process/manager.js";

/** Bytes each run writes, as the goal states. */
const TOTAL_BYTES = 1 << 30;
/** Alternating runs per side; the median of the paired ratios is reported (the machine is shared and noisy). */
const RUNS = 7;
const GOAL_RATIO = 0.9;
const GOAL_RSS_MIB = 16;
/** RSS sampling period during manager runs. */
const SAMPLE_MS = 20;

const COMMAND = `head -c ${TOTAL_BYTES} /dev/zero`;
const NO_CHAT = { chatId: undefined, ancestorChatIds: [] };

/** Reads `stream` to its end, discarding; resolves with the elapsed time since `t0`. */
function discard(stream: NodeJS.ReadableStream & { once(e: "close", f: () => void): unknown }, t0: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => (bytes += chunk.length));
    stream.once("close", () => {
      if (bytes !== TOTAL_BYTES) reject(new Error(`baseline read ${bytes} bytes`));
      else resolve(performance.now() - t0);
    });
  });
}

/** Baseline: the child writes into a FIFO (a kernel pipe) that Node reads with `data` events. */
function fifoBaselineRun(fifo: string): Promise<number> {
  const t0 = performance.now();
  const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writeFd = fs.openSync(fifo, fs.constants.O_WRONLY);
  const reader = new net.Socket({ fd: readFd, readable: true, writable: false });
  spawn("sh", ["-c", COMMAND], { stdio: ["ignore", writeFd, "ignore"] });
  fs.closeSync(writeFd);
  return discard(reader, t0);
}

/** Reference: child_process's own `stdio: "pipe"` (a socket pair on Linux). */
function socketPairRun(): Promise<number> {
  const t0 = performance.now();
  const child = spawn("sh", ["-c", COMMAND], { stdio: ["ignore", "pipe", "ignore"] });
  return discard(child.stdout, t0);
}

async function managerRun(manager: ProcessManager): Promise<number> {
  const t0 = performance.now();
  const { id } = await manager.startProcess({ command: COMMAND }, NO_CHAT);
  const out = await manager.output(id, NO_CHAT, { wait: true });
  const ms = performance.now() - t0;
  if (out.truncation?.original_bytes !== TOTAL_BYTES) throw new Error(`manager captured ${out.truncation?.original_bytes}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs `fn` and returns its result and how far RSS rose above its value at the start. */
async function withRss<T>(fn: () => Promise<T>): Promise<{ value: T; growth: number }> {
  const start = process.memoryUsage().rss;
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), SAMPLE_MS);
  try {
    const value = await fn();
    return { value, growth: Math.max(peak, process.memoryUsage().rss) - start };
  } finally {
    clearInterval(sampler);
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-bench-capture-"));
  const fifo = path.join(dir, "out.fifo");
  execFileSync("mkfifo", [fifo]);
  const baselineRun = () => fifoBaselineRun(fifo);
  const manager = new ProcessManager({ log: createLogger("silent"), registry: new Registry(), maxProcesses: 4 });
  await baselineRun();
  await managerRun(manager);
  const base: number[] = [];
  const managed: number[] = [];
  const socketPair: number[] = [];
  let baseRss = 0;
  let managedRss = 0;
  for (let i = 0; i < RUNS; i++) {
    socketPair.push(await socketPairRun());
    const b = await withRss(baselineRun);
    base.push(b.value);
    baseRss = Math.max(baseRss, b.growth);
    const m = await withRss(() => managerRun(manager));
    managed.push(m.value);
    managedRss = Math.max(managedRss, m.growth);
  }
  await manager.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const mib = (n: number) => (n / (1 << 20)).toFixed(1);
  const gib = TOTAL_BYTES / (1 << 30);
  const ratio = median(base.map((b, i) => b / managed[i]!));
  console.log(`baseline (pipe read and discarded): ${(gib / (median(base) / 1000)).toFixed(2)} GiB/s (median of ${RUNS})`);
  console.log(`reference (child_process stdio "pipe", a socket pair): ${(gib / (median(socketPair) / 1000)).toFixed(2)} GiB/s`);
  console.log(`through the process manager: ${(gib / (median(managed) / 1000)).toFixed(2)} GiB/s (median of ${RUNS})`);
  console.log(`capture throughput ratio: ${ratio.toFixed(2)} (goal ≥ ${GOAL_RATIO.toFixed(2)})`);
  console.log(`RSS growth while capturing 1 GiB: ${mib(managedRss)} MiB (goal < ${GOAL_RSS_MIB}); baseline: ${mib(baseRss)} MiB`);
}

await main();
