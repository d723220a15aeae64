import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Option } from "commander";
import type { LevelWithSilent } from "pino";
import { DEFAULT_LOG_RING_CAPACITY } from "./boundary/log-ring.js";
import { UsageError } from "./errors.js";
import { LOG_LEVELS } from "./log.js";

/** Everything `agentd serve` is configured with, from flags and env. */
export interface Config {
  httpAddr: HostPort;
  boundarySocket: string;
  agentSocket: string;
  dataDir: string;
  coderUrl: URL | undefined;
  token: string | undefined;
  tokenFile: string | undefined;
  workdir: string | undefined;
  logLevel: LevelWithSilent;
  maxProcesses: number;
  boundarySpoolBytes: number;
  boundaryLogRing: number;
  gitWatchPollSeconds: number;
  maxFsWatchedRepos: number;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Default for `--http-addr`. */
export const DEFAULT_HTTP_ADDR = "127.0.0.1:4141";

/** Default for `--boundary-spool-bytes`: bytes of undelivered boundary logs kept on disk. */
export const DEFAULT_BOUNDARY_SPOOL_BYTES = 64 * 1024 * 1024;

/** Default for `--git-watch-poll-interval`: seconds between fallback git scans (agentgit's 30 s). */
export const DEFAULT_GIT_WATCH_POLL_SECONDS = 30;

/** Default for `--max-fs-watched-repos`: repositories watched for file-system events at once. */
export const DEFAULT_MAX_FS_WATCHED_REPOS = 32;

/** Default for `--max-processes`: running processes allowed at once. */
export const DEFAULT_MAX_PROCESSES = 64;

/** `$TMPDIR/boundary-audit.sock`, the path boundary dials by default. */
export function defaultBoundarySocket(): string {
  return path.join(os.tmpdir(), "boundary-audit.sock");
}

/**
 * Coder's agent socket path: `$XDG_RUNTIME_DIR/coder-agent.sock`, else
 * `/tmp/coder-agent-<uid>.sock`.
 */
export function defaultAgentSocket(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) return path.join(runtime, "coder-agent.sock");
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  return `/tmp/coder-agent-${uid}.sock`;
}

/** `$XDG_DATA_HOME/agentd`, else `~/.local/share/agentd`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_DATA_HOME || path.join(os.homedir(), ".local", "share");
  return path.join(base, "agentd");
}

/** Parses `HOST:PORT` (IPv6 hosts in brackets). Port 0 picks a free port. */
export function parseHostPort(value: string, flag: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new UsageError(flag, `"${value}" is not HOST:PORT (for example ${DEFAULT_HTTP_ADDR})`);
  }
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

export function formatHostPort(addr: HostPort): string {
  return addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

function parseUrl(value: string, flag: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(flag, `"${value}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(flag, `"${value}" must be an http:// or https:// URL`);
  }
  return url;
}

function parsePositiveInt(value: string, flag: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new UsageError(flag, `"${value}" is not a positive whole number`);
  }
  return Number(value);
}

function parseLevel(value: string, flag: string): LevelWithSilent {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new UsageError(flag, `"${value}" is not one of ${LOG_LEVELS.join(", ")}`);
  }
  return value as LevelWithSilent;
}

function nonEmpty(value: string, flag: string): string {
  if (value.trim() === "") throw new UsageError(flag, "must not be empty");
  return value;
}

/** Raw option values as commander hands them over (strings). */
export interface ServeOptions {
  httpAddr: string;
  boundarySocket: string;
  agentSocket: string;
  dataDir: string;
  coderUrl?: string;
  token?: string;
  tokenFile?: string;
  workdir?: string;
  logLevel: string;
  maxProcesses: string;
  boundarySpoolBytes: string;
  boundaryLogRing: string;
  gitWatchPollInterval: string;
  maxFsWatchedRepos: string;
}

/** The `agentd serve` flags, each with its env var and default. */
export function serveOptions(env: NodeJS.ProcessEnv = process.env): Option[] {
  return [
    new Option("--http-addr <host:port>", "address of the HTTP API (process API, git watch, Connect, metrics)")
      .env("AGENTD_HTTP_ADDR")
      .default(DEFAULT_HTTP_ADDR),
    new Option("--boundary-socket <path>", "unix socket boundary sends audit logs to")
      .env("CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH")
      .default(defaultBoundarySocket()),
    new Option("--agent-socket <path>", "unix socket of the agent socket service (dRPC)")
      .env("CODER_AGENT_SOCKET_PATH")
      .default(defaultAgentSocket(env)),
    new Option("--data-dir <path>", "directory for persistent state (spool, tracked paths, embedded upstream)")
      .env("AGENTD_DATA_DIR")
      .default(defaultDataDir(env)),
    new Option("--coder-url <url>", "coderd URL; when absent agentd runs an embedded upstream").env("CODER_AGENT_URL"),
    new Option("--token <token>", "agent token for coderd").env("CODER_AGENT_TOKEN"),
    new Option("--token-file <path>", "file holding the agent token").env("CODER_AGENT_TOKEN_FILE"),
    new Option("--workdir <path>", "default working directory for processes (else the home directory)").env(
      "AGENTD_WORKDIR",
    ),
    new Option("--log-level <level>", `log level (${LOG_LEVELS.join(", ")})`).env("AGENTD_LOG_LEVEL").default("info"),
    new Option("--max-processes <n>", "running processes allowed at once; past it, start answers 429")
      .env("AGENTD_MAX_PROCESSES")
      .default(String(DEFAULT_MAX_PROCESSES)),
    new Option("--boundary-spool-bytes <n>", "bytes of boundary logs kept on disk while coderd cannot take them")
      .env("AGENTD_BOUNDARY_SPOOL_BYTES")
      .default(String(DEFAULT_BOUNDARY_SPOOL_BYTES)),
    new Option("--boundary-log-ring <n>", "recent boundary logs kept in memory for the dashboard")
      .env("AGENTD_BOUNDARY_LOG_RING")
      .default(String(DEFAULT_LOG_RING_CAPACITY)),
    new Option("--git-watch-poll-interval <seconds>", "seconds between fallback scans of watched git repositories")
      .env("AGENTD_GIT_WATCH_POLL_INTERVAL")
      .default(String(DEFAULT_GIT_WATCH_POLL_SECONDS)),
    new Option("--max-fs-watched-repos <n>", "git repositories watched for file edits at once; the rest are polled")
      .env("AGENTD_MAX_FS_WATCHED_REPOS")
      .default(String(DEFAULT_MAX_FS_WATCHED_REPOS)),
  ];
}

/** The agent token held in `file`, trimmed; a clear UsageError when it cannot be read or is empty. */
function readTokenFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError("--token-file", `cannot read "${file}"${code ? ` (${code})` : ""}`);
  }
  const token = text.trim();
  if (token === "") throw new UsageError("--token-file", `"${file}" is empty`);
  return token;
}

/** Validates raw option values into a Config; throws UsageError naming the flag. */
export function resolveConfig(opts: ServeOptions): Config {
  const coderUrl = opts.coderUrl ? parseUrl(opts.coderUrl, "--coder-url") : undefined;
  if (coderUrl && !opts.token && !opts.tokenFile) {
    throw new UsageError("--token", "required with --coder-url (or use --token-file)");
  }
  return {
    httpAddr: parseHostPort(opts.httpAddr, "--http-addr"),
    boundarySocket: nonEmpty(opts.boundarySocket, "--boundary-socket"),
    agentSocket: nonEmpty(opts.agentSocket, "--agent-socket"),
    dataDir: path.resolve(nonEmpty(opts.dataDir, "--data-dir")),
    coderUrl,
    token: opts.token || (opts.tokenFile ? readTokenFile(opts.tokenFile) : undefined),
    tokenFile: opts.tokenFile || undefined,
    workdir: opts.workdir ? path.resolve(opts.workdir) : undefined,
    logLevel: parseLevel(opts.logLevel, "--log-level"),
    maxProcesses: parsePositiveInt(opts.maxProcesses, "--max-processes"),
    boundarySpoolBytes: parsePositiveInt(opts.boundarySpoolBytes, "--boundary-spool-bytes"),
    boundaryLogRing: parsePositiveInt(opts.boundaryLogRing, "--boundary-log-ring"),
    gitWatchPollSeconds: parsePositiveInt(opts.gitWatchPollInterval, "--git-watch-poll-interval"),
    maxFsWatchedRepos: parsePositiveInt(opts.maxFsWatchedRepos, "--max-fs-watched-repos"),
  };
}
