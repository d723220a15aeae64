import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { Browser, Page } from "playwright-core";
import { AddPathsRequestSchema, GitWatchService } from "../../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import { ProcessService, Signal } from "../../gen/agentd/process/v1/process_pb.js";
import { encodeLogsFrame } from "../../src/boundary/codec.js";
import { freshDirs, initRepo, write } from "../gitwatch/helpers.js";
import { runAgentd, startAgentd, type RunningAgentd } from "../helpers/agentd.js";
import { launchChromium, screenshotDir } from "./browser.js";

const freshDir = freshDirs("agentd-dashboard-e2e-");
/** Generous: waiting is fine, the machine may be slow. */
const WAIT_MS = 20_000;

describe("the dashboard in headless chromium", () => {
  let agentd: RunningAgentd;
  let browser: Browser;
  let page: Page;
  let shots: string;
  const client = () => createClient(ProcessService, createConnectTransport({ baseUrl: agentd.url, httpVersion: "1.1" }));

  before(async () => {
    agentd = await startAgentd({ dir: freshDir(), args: ["--git-watch-poll-interval", "3600"] });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(WAIT_MS);
    shots = screenshotDir("screenshots");
    process.stdout.write(`dashboard screenshots: ${shots}\n`);
  });

  after(async () => {
    await browser?.close();
    await agentd?.stop();
  });

  const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  it("serves the page and its assets with a strict CSP, nosniff and no framing", async () => {
    for (const p of ["/", "/assets/main.js", "/assets/main.css"]) {
      const res = await fetch(`${agentd.url}${p}`);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'self'/);
      assert.match(res.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.equal(res.headers.get("x-frame-options"), "DENY");
    }
    assert.match((await fetch(`${agentd.url}/`)).headers.get("content-type") ?? "", /^text\/html/);
    assert.match((await fetch(`${agentd.url}/assets/main.js`)).headers.get("content-type") ?? "", /^text\/javascript/);
    assert.equal((await fetch(`${agentd.url}/assets/nope.js`)).status, 404);
  });

  it("starts a command from the page and shows its output while it runs", async () => {
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    page.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
    await page.goto(`${agentd.url}/#/processes`);
    await page.getByText("No processes yet").waitFor();
    await shot("processes-empty");
    const marker = randomUUID().slice(0, 8);
    await page.getByRole("textbox", { name: "Command", exact: true }).fill(`echo first-${marker}; sleep 3; echo second-${marker}`);
    await page.getByRole("button", { name: "Start" }).click();
    const output = page.locator(".output pre");
    await output.getByText(`first-${marker}`).waitFor();
    // Live: the first line is on screen while the process still sleeps.
    assert.doesNotMatch(await output.innerText(), new RegExp(`second-${marker}`));
    await page.getByText("Following live output…").waitFor();
    await output.getByText(`second-${marker}`).waitFor();
    await page.getByText("Exited with code 0.").waitFor();
    await shot("processes");
    assert.deepEqual(errors, []);
  });

  it("shows a long output's head and tail with a marker counting what was omitted", async () => {
    const started = await client().start({ command: "seq 1 100000", background: true });
    await waitUntil(async () => (await client().list({})).processes.some((p) => p.id === started.id && !p.running));
    await page.goto(`${agentd.url}/#/processes`);
    await page.locator(`tr[data-id="${started.id}"]`).getByRole("button", { name: "Output" }).click();
    const output = page.locator(".output pre");
    await output.locator(".truncation").getByText(/omitted \(head\/tail\)/).waitFor();
    const text = await output.innerText();
    assert.match(text, /^1\n2\n3\n/);
    assert.match(text, /\n100000\n?$/);
    await page.getByText("Exited with code 0.").waitFor();
    await shot("processes-truncated");
  });

  it("asks for the API token once on 401 and then sends it with every call", async () => {
    const token = `t-${randomUUID()}`;
    const authed = await browser.newPage();
    const seen: (string | undefined)[] = [];
    try {
      // Stands in for the security guard: status calls without the token get Connect's 401.
      await authed.route("**/agentd.status.v1.StatusService/GetStatus", async (route) => {
        const header = route.request().headers().authorization;
        seen.push(header);
        if (header === `Bearer ${token}`) return route.continue();
        await route.fulfill({
          status: 401,
          contentType: "application/json",
          body: JSON.stringify({ code: "unauthenticated", message: "missing or wrong token" }),
        });
      });
      await authed.goto(`${agentd.url}/#/link`);
      const dialog = authed.getByRole("dialog", { name: "Token required" });
      await dialog.waitFor();
      await dialog.getByLabel("Token").fill(token);
      await dialog.getByRole("button", { name: "Use token" }).click();
      await authed.getByText("embedded (no coderd configured)").waitFor();
      assert.equal(await authed.getByRole("dialog").count(), 0);
      assert.equal(await authed.evaluate("sessionStorage.getItem('agentd.token')"), token);
      assert.equal(seen.at(-1), `Bearer ${token}`);
    } finally {
      await authed.close();
    }
  });

  it("shows a watched repository's diff, and an edit without a reload", async () => {
    const root = initRepo(path.join(freshDir(), "app"));
    const chat = randomUUID();
    const gw = createClient(GitWatchService, createConnectTransport({ baseUrl: agentd.url, httpVersion: "1.1" }));
    await gw.addPaths(create(AddPathsRequestSchema, { chatId: chat, paths: [root] }));
    await page.goto(`${agentd.url}/#/changes`);
    const card = page.getByRole("article", { name: root });
    await card.getByText("No uncommitted changes.").waitFor();
    await waitForFsWatch(agentd.url);
    write(root, "README.md", "# Project\nedited from a shell\n");
    write(root, "src/new.ts", "export const x = 1;\n");
    await card.getByText("+edited from a shell").waitFor();
    await card.getByRole("button", { name: /README\.md\s*\+1\s*−0/ }).waitFor();
    await card.getByRole("button", { name: /src\/new\.ts/ }).waitFor();
    await card.getByText("branch main").waitFor();
    await shot("changes");
  });

  it("shows boundary decisions written to the socket, with counts per host", async () => {
    await page.goto(`${agentd.url}/#/boundary`);
    await page.getByText("No boundary decisions yet").waitFor();
    const logs = [
      ...Array.from({ length: 7 }, (_, i) => log(true, "GET", `https://api.github.com/repos/${i}`, "domain=api.github.com")),
      ...Array.from({ length: 3 }, () => log(false, "POST", "https://evil.example.com/upload", "")),
      log(true, "GET", "https://registry.npmjs.org/preact", "domain=registry.npmjs.org"),
    ];
    await writeFrames(agentd.boundarySocket, [
      encodeLogsFrame({ logs: logs.slice(0, 6), sessionId: randomUUID(), confinedProcessName: "ai-agent" }),
      encodeLogsFrame({ logs: logs.slice(6), sessionId: randomUUID(), confinedProcessName: "ai-agent" }),
    ]);
    await page.getByText("8 allowed").waitFor();
    await page.getByText("3 denied").waitFor();
    const hostRow = (host: string) => page.locator(`tr[data-host="${host}"] td.num`);
    assert.deepEqual(await hostRow("api.github.com").allInnerTexts(), ["7", "0"]);
    assert.deepEqual(await hostRow("evil.example.com").allInnerTexts(), ["0", "3"]);
    assert.deepEqual(await hostRow("registry.npmjs.org").allInnerTexts(), ["1", "0"]);
    const feed = page.locator(".boundary-table tbody tr");
    assert.equal(await feed.count(), 11);
    await shot("boundary");
    await page.getByLabel("Decision").selectOption("denied");
    await page.getByText("Showing the newest 3 of 3 matching").waitFor();
    assert.match(await feed.first().innerText(), /denied\s+POST\s+https:\/\/evil\.example\.com\/upload\s+—\s+ai-agent/);
    await page.getByLabel("Decision").selectOption("all");
    await page.getByRole("searchbox", { name: "Host" }).fill("npmjs");
    await page.getByText("Showing the newest 1 of 1 matching").waitFor();
  });

  it("lists app statuses reported with agentd app-status, newest first, and sync units", async () => {
    const socket = ["--socket-path", agentd.agentSocket];
    const report = (state: string, message: string) =>
      runAgentd(["app-status", "--slug", "fix-login", "--state", state, "--message", message, "--uri", "https://example.com/pr/7", ...socket]);
    assert.equal((await report("working", "Reproducing the login bug")).code, 0);
    assert.equal((await report("complete", "Opened a pull request")).code, 0);
    assert.equal((await runAgentd(["sync", "want", "test", "build", ...socket])).code, 0);
    assert.equal((await runAgentd(["sync", "start", "build", ...socket])).code, 0);
    await page.goto(`${agentd.url}/#/tasks`);
    const items = page.locator(".statuses li");
    await items.nth(1).waitFor();
    assert.match(await items.nth(0).innerText(), /complete\s+fix-login[\s\S]*Opened a pull request[\s\S]*https:\/\/example\.com\/pr\/7/);
    assert.match(await items.nth(1).innerText(), /working\s+fix-login[\s\S]*Reproducing the login bug/);
    await page.locator(".unit-table").getByText("build (started)").waitFor();
    await shot("tasks");
  });

  it("kills two processes through preview then confirm, and refuses a reused or mismatched token", async () => {
    const procs = client();
    const a = await procs.start({ command: "sleep 300", background: true });
    const b = await procs.start({ command: "sleep 301", background: true });
    await page.goto(`${agentd.url}/#/processes`);
    await page.getByLabel("Select sleep 300").check();
    await page.getByLabel("Select sleep 301").check();
    await page.getByRole("button", { name: "Kill selected (2)" }).click();
    const dialog = page.getByRole("dialog", { name: "Kill processes" });
    await dialog.getByText("sleep 301").waitFor();
    await shot("processes-kill-preview");
    const confirmRequest = page.waitForRequest((r) => r.url().endsWith("/agentd.process.v1.ProcessService/ConfirmKill"));
    await dialog.getByRole("button", { name: "Confirm kill" }).click();
    await dialog.getByText("Killed 2 of 2.").waitFor();
    const sent = await confirmRequest;
    const running = async (id: string) => (await procs.list({})).processes.find((p) => p.id === id)?.running;
    await waitUntil(async () => !(await running(a.id)) && !(await running(b.id)));

    // Replaying the page's own confirmation: refused with 409, nothing changes.
    const c = await procs.start({ command: "sleep 302", background: true });
    const replay = await fetch(sent.url(), { method: "POST", headers: sent.headers(), body: sent.postDataBuffer() ?? undefined });
    assert.equal(replay.status, 409);
    assert.equal(((await replay.json()) as { code: string }).code, "aborted");
    assert.equal(await running(c.id), true);

    // A token previewed for one process cannot kill another, and is spent by the attempt.
    const preview = await procs.previewKill({ ids: [c.id], signal: Signal.KILL });
    assert.deepEqual(
      preview.processes.map((p) => p.id),
      [c.id],
    );
    const mismatched = await procs.confirmKill({ token: preview.token, ids: [c.id, a.id], signal: Signal.KILL }).catch((e: unknown) => e);
    assert.equal(ConnectError.from(mismatched).code, Code.Aborted);
    const reused = await procs.confirmKill({ token: preview.token, ids: [c.id], signal: Signal.KILL }).catch((e: unknown) => e);
    assert.equal(ConnectError.from(reused).code, Code.Aborted);
    assert.equal(await running(c.id), true);
    await procs.signal({ id: c.id, signal: Signal.KILL });
  });

  it("shows the link: upstream, spool, readiness and version", async () => {
    await page.goto(`${agentd.url}/#/link`);
    await page.getByText("embedded (no coderd configured)").waitFor();
    const pkg = JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    await page.locator(".facts").getByText(pkg.version, { exact: true }).waitFor();
    await page.locator(".checks").getByText("boundary").waitFor();
    assert.equal(await page.locator(".checks .badge.failed").count(), 0);
    await shot("link");
  });

  it("is usable in a narrow window", async () => {
    const narrow = await browser.newPage({ viewport: { width: 390, height: 800 } });
    try {
      await narrow.goto(`${agentd.url}/#/processes`);
      await narrow.getByRole("button", { name: "Start" }).waitFor();
      const overflow = await narrow.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth");
      assert.ok(Number(overflow) <= 0, `page scrolls sideways by ${String(overflow)}px`);
      await narrow.screenshot({ path: path.join(shots, "processes-narrow.png"), fullPage: true });
      await narrow.goto(`${agentd.url}/#/boundary`);
      await narrow.getByText("8 allowed").waitFor();
      await narrow.screenshot({ path: path.join(shots, "boundary-narrow.png"), fullPage: true });
    } finally {
      await narrow.close();
    }
  });

  it("can be driven from the keyboard: tabs, the start form and the kill button", async () => {
    await page.goto(`${agentd.url}/#/link`);
    await page.locator("nav a").first().focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/#\/processes$/);
    await page.getByRole("textbox", { name: "Command", exact: true }).focus();
    const marker = randomUUID().slice(0, 8);
    await page.keyboard.type(`echo keyboard-${marker}`);
    await page.keyboard.press("Enter");
    await page.locator(".output pre").getByText(`keyboard-${marker}`).waitFor();
  });

  it("gives a page from another origin no readable answer and no effect", async () => {
    const evil = await serveOtherOrigin();
    const other = await browser.newPage();
    try {
      await other.goto(evil.url);
      const marker = `cross-origin-${randomUUID().slice(0, 8)}`;
      const outcome = (await other.evaluate(crossOriginAttempts(agentd.url, marker))) as string[];
      // Every attempt either failed outright or got an opaque, unreadable answer.
      for (const line of outcome) assert.match(line, /^(blocked|opaque)/, line);
      // The request guard turned them away itself (403 for a foreign Origin),
      // and the git watch WebSocket does not open for that page either.
      const socket = (await other.evaluate(crossOriginSocket(agentd.url))) as string;
      assert.equal(socket, "refused");
      const metrics = await (await fetch(`${agentd.url}/metrics`)).text();
      const refused = /^agentd_http_requests_refused_total\{status="403"\} (\d+)/m.exec(metrics);
      assert.ok(refused && Number(refused[1]) >= outcome.length, `403 refusals: ${refused?.[1]}`);
      await new Promise((r) => setTimeout(r, 500));
      const list = await client().list({});
      assert.equal(
        list.processes.some((p) => p.command.includes(marker)),
        false,
        "a cross-origin page started a process",
      );
    } finally {
      await other.close();
      await evil.close();
    }
  });
});

/** One boundary audit log. */
function log(allowed: boolean, method: string, url: string, matchedRule: string) {
  return { allowed, time: timestampFromMs(Date.now()), resource: { case: "httpRequest" as const, value: { method, url, matchedRule } } };
}

/** Writes frames to the boundary socket, as boundary does, and closes. */
async function writeFrames(socketPath: string, frames: Buffer[]): Promise<void> {
  const sock = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
  await new Promise<void>((resolve) => sock.end(Buffer.concat(frames), resolve));
}

async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForFsWatch(url: string): Promise<void> {
  await waitUntil(async () => /^agentd_gitwatch_fs_watched_repos [1-9]/m.test(await (await fetch(`${url}/metrics`)).text()));
}

/** A plain page on another loopback port: the "other origin". */
async function serveOtherOrigin(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<!doctype html><title>other origin</title><p>another site</p>");
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(() => r())) };
}

/**
 * Browser-side script: reads the process list and tries to start a process
 * through the Connect API the dashboard uses, with a preflighted JSON call,
 * a "simple" text/plain call and a no-cors call. Returns one line per attempt.
 */
function crossOriginAttempts(target: string, marker: string): string {
  const start = JSON.stringify({ command: `echo ${marker}`, background: true });
  return `(async () => {
    const base = ${JSON.stringify(target)};
    const attempts = [
      ["list json", base + "/agentd.process.v1.ProcessService/List", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }],
      ["start json", base + "/agentd.process.v1.ProcessService/Start", { method: "POST", headers: { "Content-Type": "application/json" }, body: ${JSON.stringify(start)} }],
      ["start text", base + "/agentd.process.v1.ProcessService/Start", { method: "POST", headers: { "Content-Type": "text/plain" }, body: ${JSON.stringify(start)} }],
      ["start no-cors", base + "/agentd.process.v1.ProcessService/Start", { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: ${JSON.stringify(start)} }],
      ["status", base + "/agentd.status.v1.StatusService/GetStatus", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }],
    ];
    const out = [];
    for (const [name, url, init] of attempts) {
      try {
        const res = await fetch(url, init);
        out.push(res.type === "opaque" ? "opaque " + name : "readable " + name + " " + res.status + " " + (await res.text()));
      } catch (e) {
        out.push("blocked " + name);
      }
    }
    return out;
  })()`;
}

/** Browser-side script: opens the git watch WebSocket from the page's origin; "opened" or "refused". */
function crossOriginSocket(target: string): string {
  return `new Promise((resolve) => {
    const ws = new WebSocket(${JSON.stringify(target)}.replace(/^http/, "ws") + "/api/v0/git/watch?chat_id=3f1e2d4c-5b6a-4789-8abc-def012345678");
    ws.onopen = () => { ws.close(); resolve("opened"); };
    ws.onerror = () => resolve("refused");
  })`;
}
