import { spawn } from "node:child_process";
import fs from "node:fs";
import { errnoCode } from "../errors.js";

/**
 * Options every git invocation gets, so user configuration cannot change the
 * shape of the text the watcher sends (Coder's later agentgit passes
 * `--no-ext-diff --no-textconv` for the same reason).
 */
const GIT_CONFIG_ARGS = [
  "-c",
  "core.quotePath=false",
  "-c",
  "color.ui=false",
  "-c",
  "diff.noprefix=false",
  "-c",
  "diff.mnemonicPrefix=false",
  "-c",
  "diff.relative=false",
];

/**
 * Environment for every git child: never take optional locks (a scan must not
 * rewrite the index and so wake the file watcher), never prompt, treat
 * pathspecs literally (file names with `*` or `:` are names, not patterns).
 */
const GIT_ENV: NodeJS.ProcessEnv = {
  GIT_OPTIONAL_LOCKS: "0",
  GIT_TERMINAL_PROMPT: "0",
  GIT_LITERAL_PATHSPECS: "1",
  LC_ALL: "C",
};

/** stderr kept per invocation; git's messages are short. */
const MAX_STDERR_BYTES = 16 * 1024;

/** What a finished git child reported. */
export interface GitResult {
  code: number;
  /** Collected stdout, unless `onStdout` consumed it. */
  stdout: Buffer;
  stderr: string;
}

/** Options for one git invocation. */
export interface GitOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Written to stdin, which is then closed. */
  input?: Buffer | string;
  /** Receives stdout as it streams instead of collecting it. */
  onStdout?: (chunk: Buffer) => void;
}

/** git could not be started (not installed, or not on PATH). */
export class GitUnavailableError extends Error {
  constructor(cause: unknown) {
    super("git is not available", { cause });
    this.name = "GitUnavailableError";
  }
}

/** A bounded pool of concurrently running git children. */
export class GitRunner {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly maxConcurrent: number,
    /** The git executable, looked up on PATH. */
    private readonly binary = "git",
  ) {}

  /** Runs `git <args>` in `cwd`; resolves with its exit code, whatever it is. */
  async run(args: string[], opts: GitOptions): Promise<GitResult> {
    await this.acquire(opts.signal);
    try {
      return await runGit(this.binary, args, opts);
    } finally {
      this.release();
    }
  }

  private acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.running < this.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.running++;
        resolve();
      };
      const onAbort = () => {
        const i = this.queue.indexOf(grant);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(grant);
    });
  }

  private release(): void {
    this.running--;
    this.queue.shift()?.();
  }
}

function runGit(binary: string, args: string[], opts: GitOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [...GIT_CONFIG_ARGS, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...GIT_ENV, ...opts.env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      signal: opts.signal,
    });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      if (opts.onStdout) opts.onStdout(chunk);
      else out.push(chunk);
    });
    child.stderr!.setEncoding("utf8").on("data", (s: string) => {
      if (stderr.length < MAX_STDERR_BYTES) stderr += s;
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on("error", () => undefined);
      child.stdin.end(opts.input);
    }
    child.once("error", (err) => {
      // spawn reports a missing cwd as ENOENT too; only a present cwd means git itself is missing.
      reject(errnoCode(err) === "ENOENT" && fs.existsSync(opts.cwd) ? new GitUnavailableError(err) : err);
    });
    child.once("close", (code) => {
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: stderr.trim() });
    });
  });
}
