import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const AGENTD_BIN = path.join(REPO_ROOT, "bin", "agentd");

const madeDirs = new Set<string>();
function removeMadeDirs(): void {
  for (const dir of madeDirs) fs.rmSync(dir, { recursive: true, force: true });
}
// Each test file runs in its own process: whatever a test leaves behind, even
// after a failed assertion, goes when that process exits, or when the runner
// stops it (a timed-out file) or the developer presses Ctrl-C.
process.once("exit", removeMadeDirs);
for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  process.once(signal, () => {
    removeMadeDirs();
    process.exit(code);
  });
}

/** A fresh temporary directory, removed by the caller or, at the latest, when the test process exits. */
export function tempDir(prefix = "agentd-test-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.add(dir);
  return dir;
}

let scratchSockets: NodeJS.ProcessEnv | undefined;

/**
 * Env that points every socket and the data dir at a private temporary
 * directory and the HTTP API at a free port, so a test's `agentd serve` or
 * CLI never binds or dials a default path or port (where a developer's
 * `make run` may be listening).
 */
export function privateSocketEnv(): NodeJS.ProcessEnv {
  if (!scratchSockets) {
    const dir = tempDir("agentd-test-sockets-");
    scratchSockets = {
      CODER_AGENT_SOCKET_PATH: path.join(dir, "agent.sock"),
      CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH: path.join(dir, "boundary.sock"),
      XDG_RUNTIME_DIR: dir,
      AGENTD_DATA_DIR: path.join(dir, "data"),
      AGENTD_HTTP_ADDR: "127.0.0.1:0",
    };
  }
  return scratchSockets;
}

export interface RunningAgentd {
  proc: ChildProcess;
  /** Base URL of the HTTP API, e.g. http://127.0.0.1:43123 */
  url: string;
  port: number;
  dir: string;
  dataDir: string;
  boundarySocket: string;
  agentSocket: string;
  /** Every JSON log line seen so far. */
  logs: Record<string, unknown>[];
  stderr: () => string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the first log line matching `pred`. */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export interface StartOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reuse a directory (data dir and sockets), e.g. to test a restart. */
  dir?: string;
  timeoutMs?: number;
  /** Run `bin/agentd` as a program (its launcher line starts node), as an installed agentd runs. */
  asProgram?: boolean;
}

/** The command and arguments that run `bin/agentd` with `args`: through node, or as a program. */
function agentdCommand(args: string[], asProgram = false): [string, string[]] {
  return asProgram ? [AGENTD_BIN, args] : [process.execPath, [AGENTD_BIN, ...args]];
}

/**
 * Starts the built `bin/agentd serve` on a free port with its data dir and
 * sockets in a temporary directory, and waits until it logs that it started.
 */
export async function startAgentd(opts: StartOptions = {}): Promise<RunningAgentd> {
  const dir = opts.dir ?? tempDir();
  const dataDir = path.join(dir, "data");
  const boundarySocket = path.join(dir, "boundary.sock");
  const agentSocket = path.join(dir, "run", "agent.sock");
  const args = [
    "serve",
    "--http-addr",
    "127.0.0.1:0",
    "--data-dir",
    dataDir,
    "--boundary-socket",
    boundarySocket,
    "--agent-socket",
    agentSocket,
    ...(opts.args ?? []),
  ];
  const proc = spawn(...agentdCommand(args, opts.asProgram), {
    env: { ...process.env, ...privateSocketEnv(), AGENTD_LOG_LEVEL: "debug", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let stderr = "";
  let pending = "";
  proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
    }
    waiters.forEach((w) => w());
  });
  proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));

  const waitForLog = (pred: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = logs.find(pred);
        if (hit) {
          cleanup();
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for log line; stderr: ${stderr}`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(new Error(`agentd exited before the expected log line; stderr: ${stderr}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
        proc.off("exit", onExit);
      };
      waiters.add(check);
      proc.once("exit", onExit);
      check();
    });

  const listening = await waitForLog((l) => l.msg === "http server listening", opts.timeoutMs ?? 15_000);
  await waitForLog((l) => l.msg === "agentd started", opts.timeoutMs ?? 15_000);
  const port = (listening.addr as { port: number }).port;
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    dataDir,
    boundarySocket,
    agentSocket,
    logs,
    stderr: () => stderr,
    waitForLog,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** `env` without the variables set to undefined, which a caller uses to unset one. */
function withoutUnset(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined));
}

/** Runs `bin/agentd` to completion and returns its exit code and output. */
export function runAgentd(
  args: string[],
  /** `env` adds to the test process's; a variable set to undefined is removed. */
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; asProgram?: boolean } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(...agentdCommand(args, opts.asProgram), {
      env: withoutUnset({ ...process.env, ...privateSocketEnv(), ...opts.env }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    proc.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`agentd ${args.join(" ")} did not exit in time`));
    }, opts.timeoutMs ?? 15_000);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
