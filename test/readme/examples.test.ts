// The README's examples, run as a reader would paste them.
//
// Convention: every fenced block whose info string is exactly `sh` is an
// example that runs. The blocks run in document order, in ONE bash session
// (variables set in one block are seen by the next, as in a terminal), each
// under `set -euo pipefail`, against a fresh `agentd serve` with the embedded
// upstream, with:
//   - `agentd` (bin/agentd of this build) and `buf` (node_modules/.bin) on PATH;
//   - AGENTD_URL=http://127.0.0.1:<port> of that daemon (examples write
//     "$AGENTD_URL", never a fixed port), CODER_AGENT_SOCKET_PATH and
//     CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH set to its sockets, as the
//     Coder module sets them in a workspace;
//   - the repository as the working directory (for `buf curl --schema proto`),
//     HOME and TMPDIR in a temporary directory (examples make scratch files
//     with mktemp), removed afterwards.
// A block that must not run (install steps, `make`, anything that blocks
// forever) is fenced as `sh no-run`, `text` or `console`. Any section may add
// blocks (the files API adds its own); they run here without changes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { REPO_ROOT, startAgentd, tempDir, type RunningAgentd } from "../helpers/agentd.js";

/** One runnable block: its text and the line it starts on in README.md. */
interface Example {
  line: number;
  code: string;
}

/** The `sh` blocks of a Markdown text, in order. */
function runnableBlocks(markdown: string): Example[] {
  const blocks: Example[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !lines[j]!.trimStart().startsWith(fence); j++) body.push(lines[j]!);
    if (open[3]!.trim() === "sh") blocks.push({ line: i + 1, code: body.join("\n") });
    i = j;
  }
  return blocks;
}

/** The bash program: each block in a subshell-free group, announced on stderr so a failure names its line. */
function program(examples: Example[]): string {
  const parts = ["set -euo pipefail"];
  for (const e of examples) parts.push(`echo "### README.md:${e.line}" >&2`, e.code);
  parts.push('echo "### done" >&2');
  return parts.join("\n");
}

function bash(script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn("bash", ["-c", script], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    proc.stderr.setEncoding("utf8").on("data", (c: string) => (out += c));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`the README examples did not finish in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const daemons: RunningAgentd[] = [];
after(() => Promise.all(daemons.map((d) => d.stop())));

describe("README.md examples", () => {
  it("finds runnable blocks only in sh fences", () => {
    const md = ["```sh", "echo a", "```", "```sh no-run", "make run", "```", "````text", "```sh", "nested", "```", "````"].join("\n");
    assert.deepEqual(runnableBlocks(md), [{ line: 1, code: "echo a" }]);
  });

  it("every sh block runs, in order, against a fresh daemon", async () => {
    const scratch = tempDir("agentd-test-readme-");
    const home = path.join(scratch, "home");
    const tmp = path.join(scratch, "tmp");
    fs.mkdirSync(home);
    fs.mkdirSync(tmp);
    const agentd = await startAgentd({ env: { HOME: home } });
    daemons.push(agentd);
    const examples = runnableBlocks(fs.readFileSync(path.join(REPO_ROOT, "README.md"), "utf8"));
    assert.ok(examples.length >= 8, `README has runnable examples (found ${examples.length})`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: [path.join(REPO_ROOT, "bin"), path.join(REPO_ROOT, "node_modules", ".bin"), process.env.PATH].join(path.delimiter),
      AGENTD_URL: agentd.url,
      CODER_AGENT_SOCKET_PATH: agentd.agentSocket,
      CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH: agentd.boundarySocket,
      HOME: home,
      TMPDIR: tmp,
      AGENTD_DATA_DIR: undefined,
      XDG_RUNTIME_DIR: undefined,
    };
    const { code, out } = await bash(program(examples), env, 170_000);
    const last = [...out.matchAll(/^### (.*)$/gm)].pop()?.[1];
    assert.equal(code, 0, `the block at ${last} failed:\n${out}`);
    assert.equal(last, "done");
  });
});
