// 1,000 git-watch WebSockets on one repository against a real `agentd
// serve`: time to open them all, and shell edit → `changes` on every socket
// (file-system event, no refresh), against the same measured with one
// socket in the same run, and against one raw scan of the repository.
import { execFileSync, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { GitRunner } from "../src/gitwatch/git.js";
import { RepoScanner } from "../src/gitwatch/scanner.js";
import { createLogger } from "../src/log.js";
import { startAgentd } from "../test/helpers/agentd.js";

/** Sockets of the fan-out phase (issue goal: open in < 5 s, an edit reaches all within 2 s). */
const SOCKETS = 1000;
const OPEN_GOAL_MS = 5000;
const EDIT_GOAL_MS = 2000;
/** Committed files in the repository. */
const FILES = 200;
/** Timed edits per phase, spaced past the 1 s scan cooldown so each one measures a fresh scan. */
const EDITS = 10;
const EDIT_SPACING_MS = 1500;
/** File descriptors per socket on both ends, plus room for the rest. */
const FDS_NEEDED = 2 * SOCKETS + 512;

/** Re-runs this script under a raised soft fd limit when the current one is too low. */
function ensureFdLimit(): number {
  const soft = Number(spawnSync("sh", ["-c", "ulimit -Sn"], { encoding: "utf8" }).stdout.trim());
  if (soft >= FDS_NEEDED || process.env.GITWATCH_FANOUT_REEXEC) return soft;
  const hard = spawnSync("sh", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim();
  const target = hard === "unlimited" ? FDS_NEEDED : Math.min(FDS_NEEDED, Number(hard));
  const self = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const res = spawnSync("sh", ["-c", `ulimit -Sn ${target} && exec "$0" "$@"`, ...self], {
    stdio: "inherit",
    env: { ...process.env, GITWATCH_FANOUT_REEXEC: "1" },
  });
  process.exit(res.status ?? 1);
}

function buildRepo(base: string): string {
  const root = path.join(base, "repo");
  fs.mkdirSync(root);
  const g = (...args: string[]) => execFileSync("git", args, { cwd: root, stdio: "ignore" });
  g("-c", "init.defaultBranch=main", "init", "-q");
  g("config", "user.name", "Bench");
  g("config", "user.email", "bench@example.com");
  g("config", "gc.auto", "0");
  for (let f = 0; f < FILES; f++) fs.writeFileSync(path.join(root, `f${f}.txt`), `line ${f}\n`);
  g("add", "-A");
  g("commit", "-q", "-m", "initial");
  return fs.realpathSync(root);
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU seconds `pid` has used (user + system, with the git children it has waited for). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) / CLOCK_TICKS;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** A raw socket that records when a text frame containing a marker arrives. */
class Socket {
  private wanted: { marker: string; resolve: (t: number) => void } | undefined;
  firstRepo: Promise<void>;
  private constructor(readonly ws: WebSocket, root: string) {
    let gotRepo: () => void;
    this.firstRepo = new Promise((r) => (gotRepo = r));
    const rootKey = Buffer.from(JSON.stringify(root));
    ws.on("message", (data: Buffer) => {
      if (data.includes(rootKey)) gotRepo();
      if (this.wanted && data.includes(this.wanted.marker)) {
        this.wanted.resolve(performance.now());
        this.wanted = undefined;
      }
    });
  }

  static open(url: string, root: string): Promise<Socket> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    // Listening from the start: a first message can arrive with the handshake.
    const socket = new Socket(ws, root);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(socket));
      ws.once("error", reject);
    });
  }

  /** Resolves with the arrival time of the first frame containing `marker`. */
  waitFor(marker: string): Promise<number> {
    return new Promise((resolve) => (this.wanted = { marker, resolve }));
  }
}

async function openAll(
  url: string,
  root: string,
  n: number,
): Promise<{ sockets: Socket[]; openMs: number; firstMs: number }> {
  const t0 = performance.now();
  const sockets = await Promise.all(Array.from({ length: n }, () => Socket.open(url, root)));
  const openMs = performance.now() - t0;
  await Promise.all(sockets.map((s) => s.firstRepo));
  return { sockets, openMs, firstMs: performance.now() - t0 };
}

/** Edits a file from a shell EDITS times; per edit, when each socket saw it (ms after the edit). */
async function editRounds(root: string, sockets: Socket[]): Promise<{ all: number[]; last: number[] }> {
  const all: number[] = [];
  const last: number[] = [];
  for (let i = 0; i < EDITS; i++) {
    await new Promise((r) => setTimeout(r, EDIT_SPACING_MS));
    const marker = `edit-${i}-${randomUUID()}`;
    const arrivals = sockets.map((s) => s.waitFor(marker));
    const t0 = performance.now();
    spawnSync("sh", ["-c", `echo ${marker} >> f0.txt`], { cwd: root });
    const times = (await Promise.all(arrivals)).map((t) => t - t0);
    all.push(...times);
    last.push(Math.max(...times));
  }
  return { all, last };
}

const fdLimit = ensureFdLimit();
console.log(`fd limit (soft) ${fdLimit}; ${SOCKETS} sockets need about ${FDS_NEEDED}; ${os.cpus().length} cores`);
const base = fs.mkdtempSync(path.join(os.tmpdir(), "gitwatch-fanout-bench-"));
const agentd = await startAgentd({ dir: base, env: { AGENTD_LOG_LEVEL: "info" } });
try {
  const root = buildRepo(base);
  fs.appendFileSync(path.join(root, "f0.txt"), "dirty\n");
  const chat = randomUUID();
  const res = await fetch(`${agentd.url}/api/v0/git/paths`, {
    method: "POST",
    headers: { "Coder-Chat-Id": chat },
    body: JSON.stringify({ paths: [root] }),
  });
  if (res.status !== 200) throw new Error(`POST /api/v0/git/paths: ${res.status}`);
  const url = `${agentd.url.replace(/^http/, "ws")}/api/v0/git/watch?chat_id=${chat}`;

  const scanner = new RepoScanner(new GitRunner(8), createLogger("silent"));
  const rawScans: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await scanner.scan(root);
    rawScans.push(performance.now() - t);
  }
  const rawScan = percentile(rawScans, 50);

  const one = await openAll(url, root, 1);
  const oneEdits = await editRounds(root, one.sockets);
  one.sockets.forEach((s) => s.ws.close());

  const pid = agentd.proc.pid!;
  const cpuOpen0 = cpuSeconds(pid);
  const many = await openAll(url, root, SOCKETS);
  const cpuOpen = cpuSeconds(pid) - cpuOpen0;
  const cpuEdits0 = cpuSeconds(pid);
  const manyEdits = await editRounds(root, many.sockets);
  const cpuEdits = cpuSeconds(pid) - cpuEdits0;
  many.sockets.forEach((s) => s.ws.close());

  const oneP50 = percentile(oneEdits.all, 50);
  const manyP50 = percentile(manyEdits.all, 50);
  const manyMax = Math.max(...manyEdits.last);
  const openPerSocket = many.openMs / SOCKETS;
  console.log(`one raw scan of the repository (in process, baseline): median ${rawScan.toFixed(1)} ms`);
  console.log(
    `1 socket (baseline): open ${one.openMs.toFixed(0)} ms, first changes ${one.firstMs.toFixed(0)} ms; edit → changes p50 ${oneP50.toFixed(0)} ms, max ${Math.max(...oneEdits.last).toFixed(0)} ms`,
  );
  console.log(
    `${SOCKETS} sockets: all open in ${many.openMs.toFixed(0)} ms (goal < ${OPEN_GOAL_MS}), all had their first changes after ${many.firstMs.toFixed(0)} ms`,
  );
  console.log(
    `${SOCKETS} sockets: edit → changes on every socket, ${EDITS} edits: p50 ${manyP50.toFixed(0)} ms, p50 of the last socket ${percentile(manyEdits.last, 50).toFixed(0)} ms, max ${manyMax.toFixed(0)} ms (goal ≤ ${EDIT_GOAL_MS})`,
  );
  console.log(
    `agentd CPU: ${cpuOpen.toFixed(2)} s to open ${SOCKETS} sockets and send their first changes, ${((cpuEdits / EDITS) * 1000).toFixed(0)} ms per edit delivered to all (load average now ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores)`,
  );
  console.log(`open time per socket ratio vs 1 socket: ${(openPerSocket / one.openMs).toFixed(3)}`);
  console.log(`edit latency p50 ratio ${SOCKETS} sockets vs 1 socket: ${(manyP50 / oneP50).toFixed(2)}`);
  console.log(`edit latency (last socket, max) ratio vs one raw scan: ${(manyMax / rawScan).toFixed(1)}`);
  const metrics = await (await fetch(`${agentd.url}/metrics`)).text();
  const scans = /^agentd_gitwatch_repo_scans_total\{result="ok"\} (\d+)/m.exec(metrics)?.[1];
  console.log(`repository scans in agentd over the whole run: ${scans} (for ${SOCKETS + 1} sockets and ${2 * EDITS} edits)`);
} finally {
  await agentd.stop();
  fs.rmSync(base, { recursive: true, force: true, maxRetries: 5 });
}
