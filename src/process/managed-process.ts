import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import type { Readable } from "node:stream";
import { errnoCode } from "../errors.js";
import type { FifoPool } from "./fifo-pool.js";
import { FollowQueue } from "./follow-queue.js";
import { HeadTailBuffer, type RenderedOutput } from "./head-tail-buffer.js";
import type { ExitOutcome } from "./metrics.js";
import { drainBeforeDestroy, holdSlave } from "./pty-drain.js";

/** After the shell exits, how long its output pipe may stay open (Go's exec.Cmd WaitDelay in agentproc). */
export const PIPE_WAIT_DELAY_MS = 5000;
/** Columns of the pseudo-terminal a `pty` process gets (the classic terminal size). */
export const PTY_COLS = 80;
/** Rows of the pseudo-terminal a `pty` process gets. */
export const PTY_ROWS = 24;

/** Bytes read from a process's output pipe at once (libuv's read size for streams). */
export const READ_CHUNK_BYTES = 65536;

/**
 * The one buffer every output pipe is read into. Reads are delivered one
 * at a time on the event loop and copied out at once (into the head/tail
 * buffer and follower queues), so sharing it is safe and capture allocates
 * nothing per chunk.
 */
const READ_BUFFER = Buffer.allocUnsafe(READ_CHUNK_BYTES);

/**
 * Without a FIFO: makes the shell's stderr the same pipe as its stdout
 * before the command runs, so both streams land in one buffer in the order
 * they were written.
 */
const MERGE_STDERR_PREFIX = "exec 2>&1; ";

const requireNative = createRequire(import.meta.url);

/** Everything a process is started with, after defaults were applied. */
export interface SpawnSpec {
  command: string;
  /** The resolved working directory; undefined inherits agentd's. */
  cwd: string | undefined;
  env: Record<string, string>;
  pty: boolean;
  /** Where the output pipe comes from; without one, two spawn pipes are merged. */
  fifos: FifoPool | undefined;
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
  private readonly exitWatchers = new Set<() => void>();
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
    const fifo = spec.pty ? undefined : spec.fifos?.acquire();
    const started = spec.pty
      ? this.spawnPty(spec)
      : fifo
        ? this.spawnFifo(spec, fifo, spec.fifos!)
        : this.spawnPipe(spec);
    this.pid = started.pid;
    this.kill = started.kill;
    this.spawnFailure = started.failure;
  }

  /**
   * The child gets the write end of one FIFO as stdout and stderr, exactly
   * as Go hands a child one pipe; agentd reads the other end into
   * READ_BUFFER.
   */
  private spawnFifo(spec: SpawnSpec, fifo: string, pool: FifoPool): Spawned {
    const fds = openFifo(fifo);
    if (!fds) {
      pool.release(fifo, false);
      return this.spawnPipe(spec);
    }
    const [readFd, writeFd] = fds;
    let reusable = true;
    // The Socket constructor takes `onread` as connect() does; the typings list it only there.
    const opts: net.SocketConstructorOpts & { onread: net.OnReadOpts } = {
      fd: readFd,
      readable: true,
      writable: false,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          this.capture(buf, n);
          return true;
        },
      },
    };
    const out = new net.Socket(opts);
    out.on("error", () => {});
    out.once("close", () => pool.release(fifo, reusable));
    let child: ChildProcess;
    try {
      child = spawn("sh", ["-c", spec.command], {
        cwd: spec.cwd,
        env: spec.env,
        detached: true,
        stdio: ["ignore", writeFd, writeFd],
      });
    } catch (err) {
      out.destroy();
      throw err;
    } finally {
      fs.closeSync(writeFd);
    }
    if (child.pid === undefined) {
      out.destroy();
      const failure = new Promise<Error>((resolve) => child.once("error", (err) => resolve(spawnError(err))));
      return { pid: -1, kill: () => {}, failure };
    }
    this.collect(child, [out], () => (reusable = false));
    return { pid: child.pid, kill: (s) => killGroup(child.pid!, s), failure: undefined };
  }

  /**
   * Without a FIFO (no `mkfifo` here): child_process's own stdout and stderr
   * pipes, with the shell merging stderr into stdout before the command runs.
   */
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
    for (const pipe of pipes) pipe.on("data", (chunk: Buffer) => this.capture(chunk, chunk.length));
    this.collect(child, pipes, () => {});
    return { pid: child.pid, kill: (s) => killGroup(child.pid!, s), failure: undefined };
  }

  /**
   * Finishes the process once it exited and every output pipe closed. When
   * grandchildren hold a pipe open past PIPE_WAIT_DELAY_MS after the exit,
   * the pipes are cut off (`onCutOff`) and, as with Go's WaitDelay, a clean
   * exit counts as failed.
   */
  private collect(child: ChildProcess, pipes: Readable[], onCutOff: () => void): void {
    let exitCode: number | undefined;
    let openPipes = pipes.length;
    let waitTimer: NodeJS.Timeout | undefined;
    const settle = () => {
      if (exitCode === undefined || openPipes > 0) return;
      clearTimeout(waitTimer);
      this.finish(exitCode);
    };
    for (const pipe of pipes) {
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
      waitTimer = setTimeout(() => {
        if (exitCode === 0) exitCode = -1;
        onCutOff();
        for (const pipe of pipes) pipe.destroy();
      }, PIPE_WAIT_DELAY_MS);
      waitTimer.unref();
    });
  }

  /**
   * `sh -c <command>` as the session leader of a new pseudo-terminal, so its
   * exit status and the signal that killed it reach agentd directly. On
   * Linux, the last output of a pty whose every slave descriptor closed can
   * be lost before the master reads it (node-pty issues #72, #85, #726), so
   * agentd holds a slave descriptor of its own until node-pty reported the
   * exit. With the slave still open, node-pty keeps reading the master for
   * its socket timeout (200 ms) before it reports the exit, so a pty
   * process's exit shows about that much later. When that timeout ends,
   * the output is read on up to a marker written through the held slave
   * (pty-drain.ts), so no output is lost to a late read.
   */
  private spawnPty(spec: SpawnSpec): Spawned {
    const pty = requireNative("node-pty") as typeof import("node-pty");
    const term = pty.spawn("sh", ["-c", spec.command], {
      name: spec.env.TERM || "xterm",
      cols: PTY_COLS,
      rows: PTY_ROWS,
      cwd: spec.cwd,
      env: spec.env,
      encoding: null,
    });
    const slave = holdSlave(term);
    const read = drainBeforeDestroy(term, slave, (chunk) => this.capture(chunk, chunk.length));
    term.onData((data: string | Buffer) => read(typeof data === "string" ? Buffer.from(data) : data));
    term.onExit(({ exitCode, signal }) => {
      if (slave !== undefined) fs.closeSync(slave);
      this.killedBySignal = Boolean(signal);
      this.finish(signal ? -1 : exitCode);
    });
    return { pid: term.pid, kill: (s) => killGroup(term.pid, s), failure: undefined };
  }

  /** Takes the first `n` bytes of `chunk`, which the caller may reuse afterwards. */
  private capture(chunk: Uint8Array, n: number): void {
    this.buffer.write(chunk, n);
    this.hooks.onOutput(n);
    if (this.followers.size > 0) {
      const data = chunk.subarray(0, n);
      for (const f of this.followers) f.push(data);
    }
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
    for (const watcher of this.exitWatchers) watcher();
    this.exitWatchers.clear();
  }

  /**
   * Calls `cb` once the process exited and its output is complete (at once
   * when it already has). The returned function unregisters it, so a
   * watcher that gives up keeps nothing alive.
   */
  whenExited(cb: () => void): () => void {
    if (!this.running) {
      cb();
      return () => {};
    }
    this.exitWatchers.add(cb);
    return () => this.exitWatchers.delete(cb);
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

/**
 * Opens both ends of a FIFO: the read end first and without blocking, so
 * the write end (which blocks until a reader exists) opens at once. The
 * write end is opened through the read end's /proc entry where there is
 * one, so it is the same pipe even if the path changed in between, and
 * the open can never wait for a reader. It stays blocking, as the child's
 * stdout must be. Undefined when the path is gone or is not a FIFO (the
 * caller then uses plain pipes).
 */
function openFifo(fifo: string): [number, number] | undefined {
  let readFd: number | undefined;
  try {
    readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (!fs.fstatSync(readFd).isFIFO()) throw new Error(`${fifo} is not a FIFO`);
    return [readFd, openWriteEnd(readFd, fifo)];
  } catch {
    if (readFd !== undefined) fs.closeSync(readFd);
    return undefined;
  }
}

function openWriteEnd(readFd: number, fifo: string): number {
  try {
    return fs.openSync(`/proc/self/fd/${readFd}`, fs.constants.O_WRONLY);
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw err;
    return fs.openSync(fifo, fs.constants.O_WRONLY);
  }
}

/** Go's exec error text for the same failure. */
function spawnError(err: Error): Error {
  if (errnoCode(err) === "ENOENT") return new Error('exec: "sh": executable file not found in $PATH');
  return new Error(`fork/exec sh: ${err.message}`);
}
