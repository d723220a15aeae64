import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import type { IPty } from "node-pty";
import { errnoCode } from "../errors.js";
import { FollowQueue } from "./follow-queue.js";
import { HeadTailBuffer, type RenderedOutput } from "./head-tail-buffer.js";
import type { ExitOutcome } from "./metrics.js";

/** After the shell exits, how long its output pipe may stay open (Go's exec.Cmd WaitDelay in agentproc). */
export const PIPE_WAIT_DELAY_MS = 5000;
/** Size of the pseudo-terminal a `pty` process gets. */
export const PTY_COLS = 80;
export const PTY_ROWS = 24;

/**
 * Makes the shell's stderr the same pipe as its stdout before the command
 * runs, so both streams land in one buffer in the order they were written
 * (Go hands the child one shared pipe for both).
 */
const MERGE_STDERR_PREFIX = "exec 2>&1; ";

/**
 * How long the session leader of a pty outlives the command. On Linux, the
 * last output of a pty whose session leader has exited can be lost before
 * the master side reads it (node-pty issues #72, #85, #726); keeping the
 * session open briefly lets that output drain.
 */
export const PTY_DRAIN_MS = 100;

/**
 * The pty session leader: runs the command as `sh -c <command>` (passed as
 * `$0`), waits PTY_DRAIN_MS, then exits with the command's status. Signals
 * agentd sends reach both (same process group); a command killed by a
 * signal from elsewhere reports 128+N, as a shell does.
 */
const PTY_WRAPPER = `sh -c "$0"; s=$?; sleep ${PTY_DRAIN_MS / 1000}; exit $s`;

const requireNative = createRequire(import.meta.url);

/** Everything a process is started with, after defaults were applied. */
export interface SpawnSpec {
  command: string;
  /** The resolved working directory; undefined inherits agentd's. */
  cwd: string | undefined;
  env: Record<string, string>;
  pty: boolean;
}

/** What callers record alongside a process. */
export interface ProcessMeta {
  command: string;
  /** The resolved working directory (what list reports; empty when inherited). */
  workdir: string;
  /** The workdir as the request gave it. */
  requestedWorkdir: string | undefined;
  background: boolean;
  pty: boolean;
  chatId: string | undefined;
  ancestorChatIds: string[];
  clientToken: string | undefined;
}

interface Spawned {
  pid: number;
  kill: (signal: NodeJS.Signals) => void;
  failure: Promise<Error> | undefined;
}

/** Hooks the manager passes to each process. */
export interface ProcessHooks {
  onOutput(bytes: number): void;
  onExit(proc: ManagedProcess, outcome: ExitOutcome): void;
  onFollowDrop(bytes: number): void;
}

/**
 * One child started as `sh -c <command>` in its own process group, its
 * output captured into a HeadTailBuffer. The exited state is set only once
 * the output is complete, so a reader that sees `running: false` also sees
 * all the output.
 */
export class ManagedProcess {
  readonly id = randomUUID();
  readonly buffer = new HeadTailBuffer();
  readonly pid: number;
  readonly startedAtMs: number;
  running = true;
  exitCode: number | undefined;
  exitedAtMs: number | undefined;
  /** Resolves once the process exited and its output is complete. */
  readonly exited: Promise<void>;
  private resolveExited!: () => void;
  private readonly followers = new Set<FollowQueue>();
  private timedOut = false;
  private killedBySignal = false;
  /** Set when the spawn failed; resolves with the OS error. */
  readonly spawnFailure: Promise<Error> | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private readonly kill: (signal: NodeJS.Signals) => void;

  /**
   * Spawns the process synchronously. When the spawn fails (no `sh`, say)
   * `spawnFailure` is set and resolves with the OS error; the process is
   * running otherwise.
   */
  constructor(
    readonly meta: ProcessMeta,
    spec: SpawnSpec,
    private readonly hooks: ProcessHooks,
    private readonly now: () => number,
  ) {
    this.startedAtMs = now();
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    const started = spec.pty ? this.spawnPty(spec) : this.spawnPipe(spec);
    this.pid = started.pid;
    this.kill = started.kill;
    this.spawnFailure = started.failure;
  }

  private spawnPipe(spec: SpawnSpec): Spawned {
    const child = spawn("sh", ["-c", MERGE_STDERR_PREFIX + spec.command], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (child.pid === undefined) {
      const failure = new Promise<Error>((resolve) => child.once("error", (err) => resolve(spawnError(err))));
      return { pid: -1, kill: () => {}, failure };
    }
    // stdout carries everything once the prefix ran; stderr only what the
    // shell says before that (a syntax error in the command line).
    const pipes = [child.stdout!, child.stderr!];
    let exitCode: number | undefined;
    let openPipes = pipes.length;
    let waitTimer: NodeJS.Timeout | undefined;
    const settle = () => {
      if (exitCode === undefined || openPipes > 0) return;
      clearTimeout(waitTimer);
      this.finish(exitCode);
    };
    for (const pipe of pipes) {
      pipe.on("data", (chunk: Buffer) => this.capture(chunk));
      pipe.on("error", () => {});
      pipe.on("close", () => {
        openPipes--;
        settle();
      });
    }
    child.on("error", () => {});
    child.on("exit", (code) => {
      exitCode = code ?? -1;
      this.killedBySignal = code === null;
      if (openPipes === 0) return settle();
      // Grandchildren may hold the pipe open; after the delay the output is
      // cut off and, as with Go's WaitDelay, a clean exit counts as failed.
      waitTimer = setTimeout(() => {
        if (exitCode === 0) exitCode = -1;
        for (const pipe of pipes) pipe.destroy();
      }, PIPE_WAIT_DELAY_MS);
      waitTimer.unref();
    });
    return { pid: child.pid, kill: (s) => killGroup(child.pid!, s), failure: undefined };
  }

  private spawnPty(spec: SpawnSpec): Spawned {
    const pty = requireNative("node-pty") as typeof import("node-pty");
    const term: IPty = pty.spawn("sh", ["-c", PTY_WRAPPER, spec.command], {
      name: spec.env.TERM || "xterm",
      cols: PTY_COLS,
      rows: PTY_ROWS,
      cwd: spec.cwd,
      env: spec.env,
      encoding: null,
    });
    term.onData((data: string | Buffer) => this.capture(typeof data === "string" ? Buffer.from(data) : data));
    term.onExit(({ exitCode, signal }) => {
      this.killedBySignal = Boolean(signal);
      this.finish(signal ? -1 : exitCode);
    });
    return { pid: term.pid, kill: (s) => killGroup(term.pid, s), failure: undefined };
  }

  private capture(chunk: Buffer): void {
    this.buffer.write(chunk);
    this.hooks.onOutput(chunk.length);
    if (this.followers.size > 0) for (const f of this.followers) f.push(chunk);
  }

  private finish(exitCode: number): void {
    if (!this.running) return;
    clearTimeout(this.timeoutTimer);
    this.running = false;
    this.exitCode = exitCode;
    this.exitedAtMs = this.now();
    this.buffer.close();
    for (const f of this.followers) f.end(exitCode);
    this.followers.clear();
    this.hooks.onExit(this, this.outcome(exitCode));
    this.resolveExited();
  }

  private outcome(exitCode: number): ExitOutcome {
    if (this.timedOut) return "timeout";
    if (exitCode === 0) return "success";
    if (exitCode > 0) return "failure";
    return this.killedBySignal ? "signal" : "error";
  }

  /** Sends `signal` to the whole process group. */
  signal(signal: NodeJS.Signals): void {
    this.kill(signal);
  }

  /** Kills the whole group with SIGKILL once `ms` have passed, unless it exited. */
  setTimeout(ms: number): void {
    this.timeoutTimer = setTimeout(() => {
      this.timedOut = true;
      this.signal("SIGKILL");
    }, ms);
    this.timeoutTimer.unref();
  }

  /** Sends `signal` to the group even after the leader exited (its background children may live on). */
  signalGroup(signal: NodeJS.Signals): void {
    killGroup(this.pid, signal, this.running);
  }

  /** The rendered output snapshot. */
  output(): RenderedOutput {
    return this.buffer.output();
  }

  /**
   * A follower: first the retained output (with the bytes omitted between
   * head and tail reported as dropped), then live chunks, then the exit.
   */
  follow(): FollowQueue {
    const queue = new FollowQueue((n) => this.hooks.onFollowDrop(n));
    const retained = this.buffer.bytes();
    const head = retained.subarray(0, Math.min(retained.length, this.buffer.headSize));
    const tail = retained.subarray(head.length);
    queue.push(head);
    if (tail.length > 0) {
      const omitted = this.buffer.totalWritten() - retained.length;
      if (omitted > 0) queue.skip(omitted);
      queue.push(tail);
    }
    if (this.running) this.followers.add(queue);
    else queue.end(this.exitCode ?? -1);
    return queue;
  }

  /** Stops delivering to `queue` (the follower went away). */
  unfollow(queue: FollowQueue): void {
    this.followers.delete(queue);
  }
}

/**
 * Signals a process group, ignoring one that is already gone. A pty child
 * creates its group only after the fork returned, so when the group does
 * not exist yet the leader itself is signalled.
 */
function killGroup(pid: number, signal: NodeJS.Signals, leaderRunning = true): void {
  for (const target of leaderRunning ? [-pid, pid] : [-pid]) {
    try {
      process.kill(target, signal);
      return;
    } catch (err) {
      if (errnoCode(err) !== "ESRCH") throw err;
    }
  }
}

/** Go's exec error text for the same failure. */
function spawnError(err: Error): Error {
  if (errnoCode(err) === "ENOENT") return new Error('exec: "sh": executable file not found in $PATH');
  return new Error(`fork/exec sh: ${err.message}`);
}
