/**
 * Process start latency: time from asking the process manager to start
 * `echo ready` until its first output chunk arrives, against a raw
 * child_process.spawn of the same command; then 200 short processes started
 * at once, each of which must complete with its own output.
 * Run: node --import tsx bench/process-latency.ts
 */
import { spawn } from "node:child_process";
import { Registry } from "prom-client";
import { createLogger } from "../src/log.js";
import { ProcessManager } from "../src/process/manager.js";

/** Sequential starts per side (alternating); p50 is compared. */
const SAMPLES = 500;
/** Processes started at once in the concurrency check, as the goal states. */
const CONCURRENT = 200;
const GOAL_RATIO = 1.3;
const COMMAND = "echo ready";
const NO_CHAT = { chatId: undefined, ancestorChatIds: [] };

/** Like managedFirstOutput, returns only once the child is gone, so no sample overlaps the previous child. */
function rawFirstOutput(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ms: number | undefined;
    const child = spawn("sh", ["-c", COMMAND], { stdio: ["ignore", "pipe", "ignore"] });
    child.stdout.once("data", () => (ms = performance.now() - t0));
    child.once("error", reject);
    child.once("close", () => (ms === undefined ? reject(new Error("no output")) : resolve(ms)));
  });
}

async function managedFirstOutput(manager: ProcessManager): Promise<number> {
  const t0 = performance.now();
  const { id } = await manager.startProcess({ command: COMMAND }, NO_CHAT);
  const { queue } = manager.follow(id, NO_CHAT);
  let ms: number | undefined;
  for await (const item of queue.drain()) {
    if (item.kind === "data") ms ??= performance.now() - t0;
  }
  if (ms === undefined) throw new Error("process exited without output");
  return ms;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

async function concurrent(manager: ProcessManager): Promise<{ ok: number; ms: number }> {
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: CONCURRENT }, async (_, i) => {
      const { id } = await manager.startProcess({ command: `echo job-${i}` }, NO_CHAT);
      const out = await manager.output(id, NO_CHAT, { wait: true });
      return out.running === false && out.exitCode === 0 && out.output === `job-${i}\n`;
    }),
  );
  return { ok: results.filter(Boolean).length, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  const manager = new ProcessManager({
    log: createLogger("silent"),
    registry: new Registry(),
    maxProcesses: CONCURRENT,
  });
  for (let i = 0; i < 10; i++) {
    await rawFirstOutput();
    await managedFirstOutput(manager);
  }
  const raw: number[] = [];
  const managed: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    raw.push(await rawFirstOutput());
    managed.push(await managedFirstOutput(manager));
  }
  const rawP50 = percentile(raw, 0.5);
  const managedP50 = percentile(managed, 0.5);
  console.log(`raw spawn start-to-first-output: p50 ${rawP50.toFixed(2)} ms, p99 ${percentile(raw, 0.99).toFixed(2)} ms`);
  console.log(
    `process manager start-to-first-output: p50 ${managedP50.toFixed(2)} ms, p99 ${percentile(managed, 0.99).toFixed(2)} ms`,
  );
  console.log(`start latency ratio (p50): ${(managedP50 / rawP50).toFixed(2)} (goal ≤ ${GOAL_RATIO.toFixed(2)})`);
  const { ok, ms } = await concurrent(manager);
  console.log(`${CONCURRENT} concurrent short processes: ${ok}/${CONCURRENT} completed, ${CONCURRENT - ok} lost, ${ms.toFixed(0)} ms`);
  await manager.close();
}

await main();
