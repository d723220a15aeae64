/**
 * Output capture throughput: a child writes 1 GiB to stdout through the
 * process manager (one merged pipe into the head/tail buffer, metrics, exit
 * handling) against a baseline that spawns the same command with a plain
 * Node pipe and discards every chunk. Runs alternate so both sides of a pair
 * see the same machine load; the ratio is the median of the per-pair ratios.
 * `head` writes 8 KiB at a time, so this also measures per-chunk overhead.
 * RSS is sampled during the manager runs.
 * Run: node --import tsx bench/process-capture.ts
 */
import { spawn } from "node:child_process";
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

function baselineRun(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("sh", ["-c", COMMAND], { stdio: ["ignore", "pipe", "ignore"] });
    let bytes = 0;
    child.stdout.on("data", (chunk: Buffer) => (bytes += chunk.length));
    child.stdout.once("close", () => {
      if (bytes !== TOTAL_BYTES) reject(new Error(`baseline read ${bytes} bytes`));
      else resolve(performance.now() - t0);
    });
  });
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
  const manager = new ProcessManager({ log: createLogger("silent"), registry: new Registry(), maxProcesses: 4 });
  await baselineRun();
  await managerRun(manager);
  const base: number[] = [];
  const managed: number[] = [];
  let baseRss = 0;
  let managedRss = 0;
  for (let i = 0; i < RUNS; i++) {
    const b = await withRss(baselineRun);
    base.push(b.value);
    baseRss = Math.max(baseRss, b.growth);
    const m = await withRss(() => managerRun(manager));
    managed.push(m.value);
    managedRss = Math.max(managedRss, m.growth);
  }
  await manager.close();
  const mib = (n: number) => (n / (1 << 20)).toFixed(1);
  const gib = TOTAL_BYTES / (1 << 30);
  const ratio = median(base.map((b, i) => b / managed[i]!));
  console.log(`baseline (pipe read and discarded): ${(gib / (median(base) / 1000)).toFixed(2)} GiB/s (median of ${RUNS})`);
  console.log(`through the process manager: ${(gib / (median(managed) / 1000)).toFixed(2)} GiB/s (median of ${RUNS})`);
  console.log(`capture throughput ratio: ${ratio.toFixed(2)} (goal ≥ ${GOAL_RATIO.toFixed(2)})`);
  console.log(`RSS growth while capturing 1 GiB: ${mib(managedRss)} MiB (goal < ${GOAL_RSS_MIB}); baseline: ${mib(baseRss)} MiB`);
}

await main();
