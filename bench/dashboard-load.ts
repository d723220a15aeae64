// The dashboard's Boundary view under 5,000 boundary logs/s for 20 s, in
// Debian's headless chromium against a real `agentd serve`: how long a click
// takes to be handled and painted (measured in the page with performance
// timing), and the tab's JS heap (CDP Performance.getMetrics). The baseline is
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

async function metric(cdp: CDPSession, name: string): Promise<number> {
  const { metrics } = await cdp.send("Performance.getMetrics");
  return metrics.find((m) => m.name === name)?.value ?? 0;
}

/** The page's used JS heap in MiB, from CDP Performance.getMetrics. */
async function heapMb(cdp: CDPSession): Promise<number> {
  return (await metric(cdp, "JSHeapUsedSize")) / 1024 / 1024;
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
  const BREAKDOWN = ["TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration"];
  const before = await Promise.all(BREAKDOWN.map((m) => metric(cdp, m)));
  const loadStart = Date.now();
  const load = offerLoad(agentd.boundarySocket, LOAD_SECONDS).finally(() => (done = true));
  const loaded = await clicks(page, () => !done);
  const written = await load;
  const wall = (Date.now() - loadStart) / 1000;
  const shares = (await Promise.all(BREAKDOWN.map((m) => metric(cdp, m)))).map((v, i) => (v - before[i]!) / wall);
  clearInterval(sampler);
  heap.push(await heapMb(cdp));
  await page.waitForTimeout(1000);
  const shown = await page.locator(".totals").innerText();

  const maxHeap = Math.max(...heap);
  const share = (i: number) => `${(shares[i]! * 100).toFixed(0)}%`;
  console.log(
    `page main thread under load, share of wall time: busy ${share(0)} (script ${share(1)}, layout ${share(2)}, style ${share(3)})`,
  );
  console.log(`offered: ${written} logs in ${LOAD_SECONDS} s (${LOGS_PER_SECOND}/s), page totals after: ${shown.replace(/\s+/g, " ")}`);
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
