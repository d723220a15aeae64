// Edit-to-message latency of a shell edit through a real `agentd serve` and
// WebSocket (file-system events, no refresh), then the daemon's CPU while 10
// watched repositories sit idle under the 5 s poll (its git children
// included), against an idle Node process and an `agentd serve` watching
// nothing, measured the same way over the same minute.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { GitServerMessage } from "../src/gitwatch/messages.js";
import { startAgentd } from "../test/helpers/agentd.js";
import { WatchClient } from "../test/gitwatch/helpers.js";

/** Watched repositories, each with this many committed files. */
const REPOS = 10;
const FILES_PER_REPO = 200;
/** Timed edits, spaced past the 1 s scan cooldown so each one measures a fresh scan. */
const EDITS = 20;
const EDIT_SPACING_MS = 1500;
/** Idle window for the CPU measurement. */
const IDLE_MS = 60_000;
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** utime + stime of `pid` and of its children it has waited for (the poll's git processes), in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields.slice(11, 15).reduce((sum, f) => sum + Number(f), 0) / CLOCK_TICKS;
}

function buildRepo(base: string, i: number): string {
  const root = path.join(base, `repo${i}`);
  fs.mkdirSync(root);
  const g = (...args: string[]) => execFileSync("git", args, { cwd: root, stdio: "ignore" });
  g("-c", "init.defaultBranch=main", "init", "-q");
  g("config", "user.name", "Bench");
  g("config", "user.email", "bench@example.com");
  for (let f = 0; f < FILES_PER_REPO; f++) fs.writeFileSync(path.join(root, `f${f}.txt`), `line ${f}\n`);
  g("add", "-A");
  g("commit", "-q", "-m", "initial");
  return fs.realpathSync(root);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const base = fs.mkdtempSync(path.join(os.tmpdir(), "gitwatch-latency-bench-"));
const bareDir = fs.mkdtempSync(path.join(os.tmpdir(), "gitwatch-latency-bare-"));
const agentd = await startAgentd({ dir: base });
try {
  const roots = Array.from({ length: REPOS }, (_, i) => buildRepo(base, i));
  const chat = randomUUID();
  const client = await WatchClient.connect(agentd.url, `?chat_id=${chat}`);
  await fetch(`${agentd.url}/api/v0/git/paths`, {
    method: "POST",
    headers: { "Coder-Chat-Id": chat },
    body: JSON.stringify({ paths: roots }),
  });
  await client.next((m) => (m.repositories?.length ?? 0) === REPOS);
  const deadline = Date.now() + 30_000;
  while (!/^agentd_gitwatch_fs_watched_repos 10\b/m.test(await (await fetch(`${agentd.url}/metrics`)).text())) {
    if (Date.now() > deadline) throw new Error("file-system watches never became ready");
    await new Promise((r) => setTimeout(r, 100));
  }

  const latencies: number[] = [];
  for (let i = 0; i < EDITS; i++) {
    const root = roots[i % REPOS]!;
    const marker = `edit-${i}-${randomUUID()}`;
    const seen = client.messages.length;
    const t0 = performance.now();
    spawnSync("sh", ["-c", `echo ${marker} >> f0.txt`], { cwd: root });
    const hit = (m: GitServerMessage) => m.repositories?.some((r) => r.unified_diff?.includes(marker)) ?? false;
    await client.next(hit, { from: seen, timeoutMs: 30_000 });
    latencies.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, EDIT_SPACING_MS));
  }
  console.log(
    `shell edit → changes message (no refresh), ${EDITS} edits: p50 ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms`,
  );

  const idle = spawn(process.execPath, ["-e", "setInterval(()=>{},1000)"], { stdio: "ignore" });
  const bare = await startAgentd({ dir: bareDir });
  await new Promise((r) => setTimeout(r, 1000));
  const pids = [agentd.proc.pid!, idle.pid!, bare.proc.pid!];
  const before = pids.map(cpuSeconds);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const wall = (performance.now() - t0) / 1000;
  const [daemonPct, idlePct, barePct] = pids.map((pid, i) => ((cpuSeconds(pid) - before[i]!) / wall) * 100) as [
    number,
    number,
    number,
  ];
  idle.kill();
  await bare.stop();
  console.log(`idle node process (baseline): ${idlePct.toFixed(2)}% CPU over ${wall.toFixed(0)} s`);
  console.log(`agentd watching nothing (baseline): ${barePct.toFixed(2)}% CPU over ${wall.toFixed(0)} s`);
  console.log(
    `agentd with ${REPOS} watched repositories, idle, git children included: ${daemonPct.toFixed(2)}% CPU over ${wall.toFixed(0)} s (goal ≤ 1%)`,
  );
  console.log(
    `idle CPU ratio vs idle node: ${idlePct > 0 ? (daemonPct / idlePct).toFixed(2) : "n/a (baseline used 0 ticks)"} (absolute ${daemonPct.toFixed(2)}% of one core)`,
  );
  console.log(
    `idle CPU ratio vs agentd watching nothing: ${barePct > 0 ? (daemonPct / barePct).toFixed(2) : "n/a"} (git watch's own share: ${(daemonPct - barePct).toFixed(2)}% of one core)`,
  );
  client.close();
} finally {
  await agentd.stop();
  fs.rmSync(base, { recursive: true, force: true });
  fs.rmSync(bareDir, { recursive: true, force: true });
}
