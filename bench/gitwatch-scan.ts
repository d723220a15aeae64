// One repository scan: agentd's scanner against the git CLI pipeline Coder's
// agent runs for the same result (`git diff HEAD`, `git ls-files --others
// --exclude-standard`, then one `git diff --no-index` per untracked file),
// on a repository of 20,000 files with 200 modified and 50 untracked.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { GitRunner } from "../src/gitwatch/git.js";
import { RepoScanner, type RepoState } from "../src/gitwatch/scanner.js";
import { createLogger } from "../src/log.js";

/** Shape of the test repository. */
const FILES = 20_000;
const FILES_PER_DIR = 100;
const MODIFIED = 200;
const UNTRACKED = 50;
/** Timed scans per side, after one warm-up; sides alternate so load affects both alike. */
const ROUNDS = 9;
/** What the ratio should stay under. */
const GOAL = 1.2;

const DIFF_FLAGS = ["-c", "core.quotePath=false", "diff", "--no-ext-diff", "--no-textconv", "--no-color"];

function run(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd, stdio: ["ignore", "pipe", "ignore"] });
    const out: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.once("error", reject);
    child.once("close", () => resolve(Buffer.concat(out).toString("utf8")));
  });
}

/** The raw pipeline, each step as its own git process, untracked files one after another. */
async function rawPipeline(root: string): Promise<string> {
  const [tracked, list] = await Promise.all([
    run(root, [...DIFF_FLAGS, "HEAD"]),
    run(root, ["ls-files", "--others", "--exclude-standard", "-z"]),
  ]);
  let out = tracked;
  for (const f of list.split("\0").filter(Boolean)) out += await run(root, [...DIFF_FLAGS, "--no-index", "--", "/dev/null", f]);
  return out;
}

function buildRepo(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "gitwatch-scan-bench-"));
  const g = (...args: string[]) => execFileSync("git", args, { cwd: root, stdio: "ignore" });
  g("-c", "init.defaultBranch=main", "init", "-q");
  g("config", "user.name", "Bench");
  g("config", "user.email", "bench@example.com");
  // A background auto-gc would still be writing objects when the directory is removed.
  g("config", "gc.auto", "0");
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(root, `d${Math.floor(i / FILES_PER_DIR)}`);
    if (i % FILES_PER_DIR === 0) fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, `f${i}.ts`), `export const v${i} = ${i};\n`.repeat(20));
  }
  g("add", "-A");
  g("commit", "-q", "-m", "initial");
  const step = Math.floor(FILES / MODIFIED);
  for (let i = 0; i < MODIFIED; i++) {
    const n = i * step;
    fs.appendFileSync(path.join(root, `d${Math.floor(n / FILES_PER_DIR)}`, `f${n}.ts`), `export const changed${n} = true;\n`);
  }
  for (let i = 0; i < UNTRACKED; i++) fs.writeFileSync(path.join(root, `d${i}`, `new${i}.ts`), `export const n${i} = ${i};\n`);
  return fs.realpathSync(root);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

console.log(`building a repository of ${FILES} files (${MODIFIED} modified, ${UNTRACKED} untracked)…`);
const root = buildRepo();
try {
  const scanner = new RepoScanner(new GitRunner(8), createLogger("silent"));
  const scan = async () => {
    const outcome = await scanner.scan(root);
    if (outcome.kind !== "ok") throw new Error(`scan failed: ${outcome.kind}`);
    return outcome.state as RepoState;
  };
  const [state, raw] = [await scan(), await rawPipeline(root)];
  if (state.unifiedDiff !== raw) throw new Error("agentd's diff differs from the raw pipeline's");
  console.log(`diff: ${Buffer.byteLength(raw)} bytes, identical to the raw pipeline's`);
  const agentd: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let t = performance.now();
    await rawPipeline(root);
    baseline.push(performance.now() - t);
    t = performance.now();
    await scan();
    agentd.push(performance.now() - t);
  }
  const a = median(agentd);
  const b = median(baseline);
  console.log(`raw git pipeline (baseline): median ${b.toFixed(1)} ms over ${ROUNDS} scans`);
  console.log(`agentd scanner:              median ${a.toFixed(1)} ms over ${ROUNDS} scans`);
  console.log(`scan time ratio vs raw git pipeline: ${(a / b).toFixed(2)} (goal ≤ ${GOAL})`);
} finally {
  fs.rmSync(root, { recursive: true, force: true, maxRetries: 5 });
}
