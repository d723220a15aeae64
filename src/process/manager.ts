import { EventEmitter, setMaxListeners } from "node:events";
import fs from "node:fs";
import os from "node:os";
import type { Registry } from "prom-client";
import { errorText } from "../errors.js";
import type { ChatScope } from "../http/chat.js";
import { lazily } from "../lazy.js";
import type { Logger } from "../log.js";
import type { Part } from "../part.js";
import { goQuote, notFound, ProcessError } from "./errors.js";
import { FifoPool } from "./fifo-pool.js";
import type { FollowQueue } from "./follow-queue.js";
import type { RenderedOutput } from "./head-tail-buffer.js";
import type { ManagedProcess, ProcessMeta } from "./managed-process.js";
import { ProcessMetrics } from "./metrics.js";
import { withoutSecrets } from "../secrets.js";

/** Exited processes are dropped by `list` once exited longer than this (agentproc reap age). */
export const REAP_AFTER_MS = 5 * 60 * 1000;
/** Longest a `wait` for exit blocks (agentproc maxWaitDuration). */
export const MAX_WAIT_MS = 5 * 60 * 1000;
/** Most processes `list` returns (agentproc list cap). */
export const LIST_LIMIT = 10;
/**
 * Exited processes kept at most (agentd's bound; Coder keeps them until a
 * list reaps them). Past it the longest-tracked exited process is forgotten,
 * so memory stays bounded even when nobody lists.
 */
export const MAX_EXITED_RETAINED = 1024;
/** Characters of a command's first line the process started/exited log lines carry (enough to tell commands apart). */
export const LOG_COMMAND_HEAD_CHARS = 60;
/** On close, how long a process group gets after SIGTERM before SIGKILL. */
export const CLOSE_KILL_GRACE_MS = 1500;

/** The code that spawns and captures processes, loaded with the first start. */
const loadManagedProcess = lazily(() => import("./managed-process.js"));

/** Emitted after a process exited, for git watchers of the chat and its ancestors. */
export interface ProcessExitEvent {
  id: string;
  chatId: string | undefined;
  ancestorChatIds: string[];
  /** The workdir as the request gave it; undefined when the request had none. */
  workdir: string | undefined;
}

/** A start request, in the JSON API's terms plus agentd's additions. */
export interface StartRequest {
  command: string;
  workdir?: string | undefined;
  env?: Record<string, string> | undefined;
  background?: boolean | undefined;
  /** Run under a pseudo-terminal. */
  pty?: boolean | undefined;
  /** Kill the process group after this many milliseconds; 0 or absent means never. */
  timeoutMs?: number | undefined;
  /** Idempotency key: the same token returns the same process. */
  clientToken?: string | undefined;
}

/** One row of `list`, in Coder's ProcessInfo shape (optional fields omitted when absent). */
export interface ProcessInfo {
  id: string;
  command: string;
  workdir?: string;
  background: boolean;
  running: boolean;
  exit_code?: number;
  started_at_unix: number;
  exited_at_unix?: number;
}

/** A snapshot of a process's output and state. */
export interface OutputSnapshot extends RenderedOutput {
  running: boolean;
  exitCode: number | undefined;
}

/** The signals the API accepts and what they send to the process group. */
export const SIGNALS = { kill: "SIGKILL", terminate: "SIGTERM" } as const satisfies Record<string, NodeJS.Signals>;
/** A signal name the API accepts: `kill` or `terminate`. */
export type SignalName = keyof typeof SIGNALS;

/** Rewrites the environment a process starts with (Coder's updateEnv hook). */
export type EnvHook = (env: Record<string, string>) => Record<string, string>;

/** What a ProcessManager is built with. */
export interface ProcessManagerOptions {
  log: Logger;
  registry: Registry;
  /** Default working directory when a request has none (`--workdir`). */
  workdir?: string | undefined;
  /** Running processes allowed at once (`--max-processes`). */
  maxProcesses: number;
  envHook?: EnvHook;
  /** The user's home directory, the fallback working directory. */
  homeDir?: () => string;
  /** Milliseconds since the epoch. */
  now?: () => number;
  /** Exited processes kept at most; MAX_EXITED_RETAINED unless set. */
  maxExitedRetained?: number;
  /** Where output pipes come from; a pool in the temp directory unless set. */
  fifos?: FifoPool;
  /** Token values no child may inherit, under any variable name (see secrets.ts). */
  secrets?: readonly string[];
}

interface ManagerEvents {
  exit: [ProcessExitEvent];
}

/**
 * Starts and tracks processes for the process API: spawn, bounded output,
 * chat scoping, signals, reaping, and killing everything on close. The JSON
 * routes and the Connect service both call it.
 */
export class ProcessManager extends EventEmitter<ManagerEvents> implements Part {
  readonly name = "process";
  private readonly procs = new Map<string, ManagedProcess>();
  private readonly tokens = new Map<string, ManagedProcess>();
  private readonly metrics: ProcessMetrics;
  private readonly fifos: FifoPool;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly homeDir: () => string;
  private runningCount = 0;
  private exitedCount = 0;
  private closed = false;
  /** Aborted when agentd shuts down, so blocked `wait` readers answer at once. */
  private readonly stopping = new AbortController();

  constructor(private readonly opts: ProcessManagerOptions) {
    super();
    this.log = opts.log;
    this.metrics = new ProcessMetrics(opts.registry);
    this.fifos = opts.fifos ?? new FifoPool(opts.log);
    this.now = opts.now ?? Date.now;
    this.homeDir = opts.homeDir ?? os.homedir;
    // Every blocked wait listens on it; their number is bounded by requests, not by a constant.
    setMaxListeners(0, this.stopping.signal);
  }

  /** Removes FIFO directories a killed agentd left behind; processes are spawned on request. */
  async start(): Promise<void> {
    await this.fifos.sweepStale();
  }

  /** Kills every process group and waits for them (see close). */
  async stop(): Promise<void> {
    await this.close();
  }

  /** Starts a process; resolves as soon as it is spawned, with its id. */
  async startProcess(req: StartRequest, scope: ChatScope): Promise<{ id: string; started: true }> {
    // Loaded before any check, so nothing changes between the checks and the spawn.
    const { ManagedProcess } = await loadManagedProcess();
    if (this.closed) throw this.startFailed("closed", "manager is closed");
    if (!req.command) throw new ProcessError("invalid", "Command is required.");
    const token = req.clientToken || undefined;
    if (token) {
      const existing = this.tokens.get(token);
      if (existing) return { id: this.reuseToken(existing, token, req), started: true };
    }
    if (this.runningCount >= this.opts.maxProcesses) {
      this.metrics.rejected.inc({ reason: "limit" });
      throw new ProcessError(
        "limit",
        "Too many running processes.",
        `at most ${this.opts.maxProcesses} processes may run at once (--max-processes); wait for one to exit or signal one`,
      );
    }
    // Checked in the order Go's exec.Cmd.Start meets them: environment, working directory, arguments.
    const env = this.env(req, scope);
    if (Object.entries(env).some(([k, v]) => k.includes("\0") || v.includes("\0"))) {
      throw this.startFailed("spawn", "start process: exec: environment variable contains NUL");
    }
    const cwd = req.workdir || this.defaultWorkdir();
    if (req.workdir) {
      const problem = workdirProblem(req.workdir);
      if (problem) throw this.startFailed("spawn", `start process: chdir ${req.workdir}: ${problem}`);
    }
    if (req.command.includes("\0")) throw this.startFailed("spawn", "start process: fork/exec sh: invalid argument");
    const meta: ProcessMeta = {
      command: req.command,
      workdir: cwd ?? "",
      requestedWorkdir: req.workdir || undefined,
      background: Boolean(req.background),
      pty: Boolean(req.pty),
      chatId: scope.chatId,
      ancestorChatIds: scope.ancestorChatIds,
      clientToken: token,
    };
    const spec = { command: req.command, cwd, env, pty: meta.pty, fifos: this.fifos };
    let proc: ManagedProcess;
    try {
      proc = new ManagedProcess(meta, spec, this.hooks, this.now);
    } catch (err) {
      // node-pty's fork fails by throwing (no pty devices left, say).
      throw this.startFailed("spawn", `start process: ${errorText(err)}`);
    }
    if (proc.spawnFailure) {
      const err = await proc.spawnFailure;
      throw this.startFailed("spawn", `start process: ${err.message}`);
    }
    this.procs.set(proc.id, proc);
    if (token) this.tokens.set(token, proc);
    this.runningCount++;
    this.metrics.started.inc();
    this.metrics.running.set(this.runningCount);
    if (req.timeoutMs && req.timeoutMs > 0) proc.setTimeout(req.timeoutMs);
    const command = commandHead(req.command);
    this.log.info({ id: proc.id, pid: proc.pid, command, chatId: scope.chatId, pty: meta.pty }, "process started");
    return { id: proc.id, started: true };
  }

  private reuseToken(existing: ManagedProcess, token: string, req: StartRequest): string {
    const sameWorkdir = (req.workdir || undefined) === existing.meta.requestedWorkdir;
    if (existing.meta.command === req.command && sameWorkdir) return existing.id;
    this.metrics.rejected.inc({ reason: "token_conflict" });
    throw new ProcessError(
      "tokenConflict",
      "Client token was already used to start a process with different parameters.",
      `client token ${goQuote(token)} belongs to process ${goQuote(existing.id)}, started with a different command or workdir`,
    );
  }

  private startFailed(reason: string, detail: string): ProcessError {
    this.metrics.rejected.inc({ reason });
    this.log.warn({ reason, err: detail }, "process failed to start");
    return new ProcessError("startFailed", "Failed to start process.", detail);
  }

  private readonly hooks = {
    onOutput: (bytes: number) => this.metrics.addOutputBytes(bytes),
    onFollowDrop: (bytes: number) => this.metrics.followDroppedBytes.inc(bytes),
    onExit: (proc: ManagedProcess, outcome: string) => {
      this.runningCount--;
      this.metrics.running.set(this.runningCount);
      this.metrics.exited.inc({ outcome });
      const durationMs = (proc.exitedAtMs ?? this.now()) - proc.startedAtMs;
      const command = commandHead(proc.meta.command);
      this.log.info({ id: proc.id, command, exitCode: proc.exitCode, outcome, durationMs }, "process exited");
      this.exitedCount++;
      if (this.exitedCount > (this.opts.maxExitedRetained ?? MAX_EXITED_RETAINED)) this.evictOldestExited();
      const { chatId, ancestorChatIds, requestedWorkdir } = proc.meta;
      this.emit("exit", { id: proc.id, chatId, ancestorChatIds, workdir: requestedWorkdir });
    },
  };

  /** The agent's environment without secrets → env hook → request env → CODER_CHAT_ID. */
  private env(req: StartRequest, scope: ChatScope): Record<string, string> {
    let env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    env = withoutSecrets(env, this.opts.secrets ?? []);
    if (this.opts.envHook) {
      try {
        env = this.opts.envHook({ ...env });
      } catch (err) {
        this.log.warn({ err: errorText(err) }, "environment hook failed; using the agent's environment");
      }
    }
    if (req.env) Object.assign(env, req.env);
    if (scope.chatId) env.CODER_CHAT_ID = scope.chatId;
    return env;
  }

  /**
   * The configured directory if it exists, else the home directory; when
   * neither resolves, undefined: the child inherits agentd's working
   * directory and list reports none, as in Coder.
   */
  private defaultWorkdir(): string | undefined {
    const configured = this.opts.workdir;
    if (configured && fs.existsSync(configured)) return configured;
    try {
      const home = this.homeDir();
      if (home) return home;
    } catch (err) {
      this.log.warn({ err: errorText(err) }, "no home directory; using the agent's working directory");
    }
    return undefined;
  }

  /** Reaps long-exited processes, then lists what `scope` may see: running first, newest first, at most 10. */
  list(scope: ChatScope): ManagedProcess[] {
    this.reap();
    const visible = [...this.procs.values()].filter((p) => !scope.chatId || p.meta.chatId === scope.chatId);
    visible.sort((a, b) => Number(b.running) - Number(a.running) || b.startedAtMs - a.startedAtMs);
    return visible.slice(0, LIST_LIMIT);
  }

  private reap(): void {
    const now = this.now();
    for (const p of this.procs.values()) {
      if (!p.running && p.exitedAtMs !== undefined && now - p.exitedAtMs > REAP_AFTER_MS) this.forget(p);
    }
  }

  /** Forgets the exited process started first (the map keeps start order). */
  private evictOldestExited(): void {
    for (const p of this.procs.values()) {
      if (p.running) continue;
      this.forget(p);
      this.metrics.evicted.inc();
      return;
    }
  }

  private forget(p: ManagedProcess): void {
    if (!this.procs.delete(p.id)) return;
    if (!p.running) this.exitedCount--;
    if (p.meta.clientToken && this.tokens.get(p.meta.clientToken) === p) this.tokens.delete(p.meta.clientToken);
  }

  /**
   * Throws Not Found when the process exists but belongs to another chat.
   * An unknown id passes (callers look it up after validating their input).
   */
  checkChatAccess(id: string, scope: ChatScope): void {
    const p = this.procs.get(id);
    if (p && !visibleTo(p, scope)) throw notFound(id);
  }

  /** The process `scope` may see, or Not Found. */
  get(id: string, scope: ChatScope): ManagedProcess {
    const p = this.procs.get(id);
    if (!p || !visibleTo(p, scope)) throw notFound(id);
    return p;
  }

  /**
   * The output snapshot. With `wait`, first blocks until the process exits,
   * MAX_WAIT_MS pass, or `signal` aborts; a wait that ends early is not an error.
   */
  async output(id: string, scope: ChatScope, opts: { wait?: boolean; signal?: AbortSignal } = {}): Promise<OutputSnapshot> {
    const p = this.get(id, scope);
    if (opts.wait && p.running) {
      this.log.debug({ id }, "output waiting for exit");
      // Both signals are listened to directly: AbortSignal.any over the
      // long-lived stopping signal keeps every combined signal alive in Node 20.
      await waitFor((done) => p.whenExited(done), MAX_WAIT_MS, [opts.signal, this.stopping.signal]);
    }
    const running = p.running;
    const exitCode = p.exitCode;
    return { ...p.output(), running, exitCode: running ? undefined : exitCode };
  }

  /** Sends `kill` (SIGKILL) or `terminate` (SIGTERM) to the process group. */
  signal(id: string, scope: ChatScope, name: SignalName): void {
    const p = this.get(id, scope);
    if (!p.running) throw new ProcessError("notRunning", `Process ${goQuote(id)} is not running.`);
    try {
      p.signal(SIGNALS[name]);
    } catch (err) {
      throw new ProcessError("signalFailed", "Failed to signal process.", errorText(err));
    }
  }

  /** A bounded follower of the process's output (see FollowQueue). */
  follow(id: string, scope: ChatScope): { proc: ManagedProcess; queue: FollowQueue } {
    const proc = this.get(id, scope);
    return { proc, queue: proc.follow() };
  }

  /**
   * Ends every blocked `wait` now: each answers with the current snapshot,
   * as a wait that timed out does. Called when shutdown begins, so open
   * requests do not hold the HTTP server.
   */
  releaseWaiters(): void {
    this.stopping.abort();
  }

  /**
   * Refuses new starts, sends SIGTERM to every process group it started,
   * SIGKILL after a grace period, and waits for every process to exit.
   */
  async close(): Promise<void> {
    this.releaseWaiters();
    this.closed = true;
    const all = [...this.procs.values()];
    if (all.length === 0) {
      this.fifos.close();
      return;
    }
    for (const p of all) p.signalGroup("SIGTERM");
    const allExited = Promise.all(all.map((p) => p.exited));
    const exitedInGrace = await waitFor((done) => {
      void allExited.then(done);
      return () => {};
    }, CLOSE_KILL_GRACE_MS);
    // Background children of exited shells may keep a group alive after its leader left.
    for (const p of all) p.signalGroup("SIGKILL");
    if (!exitedInGrace) await allExited;
    this.fifos.close();
    this.log.info({ processes: all.length }, "process manager closed");
  }
}

function visibleTo(p: ManagedProcess, scope: ChatScope): boolean {
  return !scope.chatId || !p.meta.chatId || p.meta.chatId === scope.chatId;
}

/** Coder's ProcessInfo for `p`, fields in Go's order; workdir and the exit fields omitted when empty. */
export function processInfo(p: ManagedProcess): ProcessInfo {
  return {
    id: p.id,
    command: p.meta.command,
    ...(p.meta.workdir ? { workdir: p.meta.workdir } : {}),
    background: p.meta.background,
    running: p.running,
    ...(p.running ? {} : { exit_code: p.exitCode ?? -1 }),
    started_at_unix: Math.floor(p.startedAtMs / 1000),
    ...(p.running ? {} : { exited_at_unix: Math.floor((p.exitedAtMs ?? 0) / 1000) }),
  };
}

/** Why `dir` cannot be a working directory, in Go's words, or undefined when it can. */
function workdirProblem(dir: string): string | undefined {
  try {
    return fs.statSync(dir).isDirectory() ? undefined : "not a directory";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "no such file or directory";
    if (code === "EACCES") return "permission denied";
    if (code === "ENOTDIR") return "not a directory";
    if (code === "ERR_INVALID_ARG_VALUE" || code === "ERR_INVALID_ARG_TYPE") return "invalid argument";
    return errorText(err);
  }
}

/**
 * Resolves true when the callback `subscribe` registers runs within `ms`,
 * false on timeout or when any of `signals` aborts. Whatever way it ends,
 * the timer, the abort listeners and the subscription are all removed.
 */
function waitFor(
  subscribe: (done: () => void) => () => void,
  ms: number,
  signals: (AbortSignal | undefined)[] = [],
): Promise<boolean> {
  const listening = signals.filter((s): s is AbortSignal => s !== undefined);
  if (listening.some((s) => s.aborted)) return Promise.resolve(false);
  return new Promise((resolve) => {
    let unsubscribe = () => {};
    const end = (settled: boolean) => {
      clearTimeout(timer);
      unsubscribe();
      for (const s of listening) s.removeEventListener("abort", onAbort);
      resolve(settled);
    };
    const onAbort = () => end(false);
    const timer = setTimeout(() => end(false), ms);
    for (const s of listening) s.addEventListener("abort", onAbort, { once: true });
    unsubscribe = subscribe(() => end(true));
  });
}

/** The start of a command's first line, for log lines: `npm test …`. */
export function commandHead(command: string): string {
  const line = command.trimStart().split("\n", 1)[0]!;
  return line.length > LOG_COMMAND_HEAD_CHARS || line.length < command.trim().length
    ? `${line.slice(0, LOG_COMMAND_HEAD_CHARS)}…`
    : line;
}
