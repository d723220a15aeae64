// The dashboard's Boundary view under 5,000 boundary logs/s for 20 s, in
// Debian's headless chromium against a real `agentd serve`: how long a click
// takes to be handled and painted (measured in the page with performance
// timing), the tab's JS heap (CDP Performance.getMetrics) and its main
// thread's work (a trace of its tasks). The baseline is
// the same click measured on the same page before the load starts.
import fs from "node:fs";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { CDPSession, Page } from "playwright-core";
import { startAgentd, tempDir } from "../test/helpers/agentd.js";
import { launchChromium } from "../test/web/browser.js";

/** Offered load (issue 16). */
const LOGS_PER_SECOND = 5_000;
const LOAD_SECONDS = 20;
/** Goals (issue 16). */
const GOAL_CLICK_MS = 200;
const GOAL_HEAP_MB = 100;
/** Clicks measured before and during the load. */
const BASELINE_CLICKS = 10;
const CLICK_SPACING_MS = 500;

/** Installed in the page: the time from each click's input event to the frame after it was handled. */
const MEASURE_CLICKS = `(() => {
  window.__clicks = [];
  document.addEventListener("click", (e) => {
    const t0 = e.timeStamp;
    requestAnimationFrame(() => window.__clicks.push(performance.now() - t0));
  });
})()`;

/** Offers the load from a separate process; resolves with the logs it wrote. */
function offerLoad(socketPath: string, seconds: number): Promise<number> {
  const writer = fileURLToPath(new URL("./fixtures/boundary-load-writer.ts", import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--import", "tsx", writer, socketPath, String(LOGS_PER_SECOND), String(seconds)], (err, stdout) =>
      err ? reject(err) : resolve(Number(stdout.trim())),
    );
  });
}

async function clicks(page: Page, count: number | (() => boolean)): Promise<number[]> {
  await page.evaluate("window.__clicks = []");
  const more = typeof count === "number" ? (i: number) => i < count : () => count();
  for (let i = 0; more(i); i++) {
    await page.getByRole("button", { name: /^(Pause|Resume)$/ }).click();
    await new Promise((r) => setTimeout(r, CLICK_SPACING_MS));
  }
  return (await page.evaluate("window.__clicks")) as number[];
}

/** The page's used JS heap in MiB, from CDP Performance.getMetrics. */
async function heapMb(cdp: CDPSession): Promise<number> {
  const { metrics } = await cdp.send("Performance.getMetrics");
  return (metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? 0) / 1024 / 1024;
}

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

/**
 * The renderer main thread's tasks in a trace: wall time (which includes time
 * the OS did not schedule the thread) and CPU time, in ms.
 */
function mainThreadTasks(trace: Buffer): { wallMs: number; cpuMs: number } {
  const events = (JSON.parse(trace.toString("utf8")) as { traceEvents: TraceEvent[] }).traceEvents;
  const main = events.find((e) => e.name === "thread_name" && e.args?.name === "CrRendererMain");
  let wallMs = 0;
  let cpuMs = 0;
  for (const e of events) {
    if (e.name !== "RunTask" || e.ph !== "X" || e.pid !== main?.pid || e.tid !== main?.tid) continue;
    wallMs += (e.dur ?? 0) / 1000;
    cpuMs += (e.tdur ?? 0) / 1000;
  }
  return { wallMs, cpuMs };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;
const fmt = (x: number) => x.toFixed(1);

const dir = tempDir("agentd-bench-dashboard-");
const agentd = await startAgentd({ dir, env: { AGENTD_LOG_LEVEL: "info" } }).catch((err: unknown) => {
  fs.rmSync(dir, { recursive: true, force: true });
  throw err;
});
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(`${agentd.url}/#/boundary`);
  await page.getByText("No boundary decisions yet").waitFor();
  await page.evaluate(MEASURE_CLICKS);
  const idle = await clicks(page, BASELINE_CLICKS);
  const idleHeap = await heapMb(cdp);

  let done = false;
  const heap: number[] = [];
  const sampler = setInterval(() => void heapMb(cdp).then((mb) => heap.push(mb)), 1000);
  await browser.startTracing(page, { categories: ["devtools.timeline", "disabled-by-default-devtools.timeline"] });
  const loadStart = Date.now();
  const load = offerLoad(agentd.boundarySocket, LOAD_SECONDS).finally(() => (done = true));
  const loaded = await clicks(page, () => !done);
  const written = await load;
  const tasks = mainThreadTasks(await browser.stopTracing());
  const wallMs = Date.now() - loadStart;
  clearInterval(sampler);
  heap.push(await heapMb(cdp));
  await page.waitForTimeout(1000);
  const shown = await page.locator(".totals").innerText();

  const maxHeap = Math.max(...heap);
  console.log(
    `page main thread under load: tasks ${fmt((tasks.wallMs / wallMs) * 100)}% of wall time, CPU ${fmt((tasks.cpuMs / wallMs) * 100)}% of one core`,
  );
  console.log(
    `offered: ${written} logs in ${LOAD_SECONDS} s (${Math.round(written / LOAD_SECONDS)}/s of ${LOGS_PER_SECOND}/s asked), page totals after: ${shown.replace(/\s+/g, " ")}`,
  );
  console.log(`click→frame idle ms: p50 ${fmt(pct(idle, 0.5))}, max ${fmt(Math.max(...idle))} (${idle.length} clicks)`);
  console.log(
    `click→frame under load ms: p50 ${fmt(pct(loaded, 0.5))}, p95 ${fmt(pct(loaded, 0.95))}, max ${fmt(Math.max(...loaded))} (${loaded.length} clicks; goal < ${GOAL_CLICK_MS})`,
  );
  console.log(`ratio: click max under load / idle max = ${(Math.max(...loaded) / Math.max(...idle)).toFixed(2)}x`);
  console.log(`JS heap MB: idle ${fmt(idleHeap)}, max under load ${fmt(maxHeap)} (goal < ${GOAL_HEAP_MB}); ratio ${(maxHeap / idleHeap).toFixed(2)}x`);
  console.log(`goals: click ${Math.max(...loaded) < GOAL_CLICK_MS ? "met" : "MISSED"}, heap ${maxHeap < GOAL_HEAP_MB ? "met" : "MISSED"}`);
} finally {
  await browser.close();
  await agentd.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
