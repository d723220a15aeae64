import fs from "node:fs";
import path from "node:path";
import { Option } from "commander";
import type { LevelWithSilent } from "pino";
import { DEFAULT_LOG_RING_CAPACITY } from "./boundary/log-ring.js";
import { UsageError } from "./errors.js";
import { isLoopbackName } from "./http/guard.js";
import { HTTP_TOKEN_FILE_ENV, HTTP_TOKEN_FILE_FLAG, readHttpTokenFile } from "./http/token-file.js";
import { defaultAgentSocket, defaultBoundarySocket, defaultDataDir } from "./default-paths.js";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat } from "./log-options.js";

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
  logFormat: LogFormat;
  maxProcesses: number;
  boundarySpoolBytes: number;
  boundaryLogRing: number;
  gitWatchPollSeconds: number;
  maxFsWatchedRepos: number;
  /** Host names accepted besides loopback (`--allowed-host`). */
  allowedHosts: string[];
  /** Origins whose pages may call the API (`--allowed-origin`). */
  allowedOrigins: string[];
  /** The HTTP API's bearer token, read from `--http-token-file`. */
  httpToken: string | undefined;
  maxWriteBytes: number;
}

export interface HostPort {
  host: string;
  port: number;
}

/** Default for `--http-addr`. */
export const DEFAULT_HTTP_ADDR = "127.0.0.1:4141";

/** Default for `--boundary-spool-bytes`: bytes of undelivered boundary logs kept on disk. */
export const DEFAULT_BOUNDARY_SPOOL_BYTES = 64 * 1024 * 1024;

/** Default for `--git-watch-poll-interval`: seconds between fingerprint checks of watched repositories (newest agentgit's 5 s). */
export const DEFAULT_GIT_WATCH_POLL_SECONDS = 5;

/** Default for `--max-fs-watched-repos`: repositories watched for file-system events at once. */
export const DEFAULT_MAX_FS_WATCHED_REPOS = 32;

/** Default for `--max-write-bytes`: largest write-file body (64 MiB). */
export const DEFAULT_MAX_WRITE_BYTES = 64 * 1024 * 1024;

/** Default for `--max-processes`: running processes allowed at once. */
export const DEFAULT_MAX_PROCESSES = 64;

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
  logFormat: LogFormat;
  maxProcesses: string;
  boundarySpoolBytes: string;
  boundaryLogRing: string;
  gitWatchPollInterval: string;
  maxFsWatchedRepos: string;
  allowedHost: string[];
  allowedOrigin: string[];
  httpTokenFile?: string;
  maxWriteBytes: string;
}

/** Collects a repeatable flag; each value (and the env var) may also list several, comma-separated. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(",").map((v) => v.trim()).filter((v) => v !== "")];
}

/** The `agentd serve` flags, each with its env var and default. */
export function serveOptions(env: NodeJS.ProcessEnv = process.env): Option[] {
  return [
    new Option("--http-addr <host:port>", "address of the HTTP API (process API, git watch, Connect, metrics)")
      .env("AGENTD_HTTP_ADDR")
      .default(DEFAULT_HTTP_ADDR),
    new Option("--boundary-socket <path>", "unix socket boundary sends audit logs to")
      .env("CODER_AGENT_BOUNDARY_LOG_PROXY_SOCKET_PATH")
      .default(defaultBoundarySocket(env)),
    new Option("--agent-socket <path>", "unix socket of the agent socket service (dRPC)")
      .env("CODER_AGENT_SOCKET_PATH")
      .default(defaultAgentSocket(env)),
    new Option("--data-dir <path>", "directory for persistent state (spool, tracked paths, embedded upstream)")
      .env("AGENTD_DATA_DIR")
      .default(defaultDataDir(env)),
    new Option("--coder-url <url>", "coderd URL; when absent agentd runs an embedded upstream").env("CODER_AGENT_URL"),
    new Option("--token <token>", "agent token for coderd").env("CODER_AGENT_TOKEN"),
    new Option("--token-file <path>", "file holding the agent token").env("CODER_AGENT_TOKEN_FILE"),
    new Option(
      "--workdir <path>",
      "default working directory for processes, and watched by git watch for a chat with no tracked path (else the home directory)",
    ).env("AGENTD_WORKDIR"),
    new Option("--log-level <level>", `log level (${LOG_LEVELS.join(", ")})`).env("AGENTD_LOG_LEVEL").default("info"),
    new Option("--log-format <format>", "log lines as JSON, or pretty for people; auto: pretty on a terminal")
      .choices(LOG_FORMATS)
      .env("AGENTD_LOG_FORMAT")
      .default("auto"),
    new Option("--max-processes <n>", "running processes allowed at once; past it, start answers 429")
      .env("AGENTD_MAX_PROCESSES")
      .default(String(DEFAULT_MAX_PROCESSES)),
    new Option("--boundary-spool-bytes <n>", "bytes of boundary logs kept on disk while coderd cannot take them")
      .env("AGENTD_BOUNDARY_SPOOL_BYTES")
      .default(String(DEFAULT_BOUNDARY_SPOOL_BYTES)),
    new Option("--boundary-log-ring <n>", "recent boundary logs kept in memory for the dashboard")
      .env("AGENTD_BOUNDARY_LOG_RING")
      .default(String(DEFAULT_LOG_RING_CAPACITY)),
    new Option("--git-watch-poll-interval <seconds>", "seconds between fingerprint checks of watched git repositories (a rescan follows only a change)")
      .env("AGENTD_GIT_WATCH_POLL_INTERVAL")
      .default(String(DEFAULT_GIT_WATCH_POLL_SECONDS)),
    new Option("--max-fs-watched-repos <n>", "git repositories watched for file edits at once; the rest are polled")
      .env("AGENTD_MAX_FS_WATCHED_REPOS")
      .default(String(DEFAULT_MAX_FS_WATCHED_REPOS)),
    new Option("--allowed-host <host>", "Host header accepted besides loopback names (repeatable; host or host:port)")
      .env("AGENTD_ALLOWED_HOSTS")
      .argParser(collect)
      .default([]),
    new Option("--allowed-origin <origin>", "origin (scheme://host[:port]) whose pages may call the API (repeatable)")
      .env("AGENTD_ALLOWED_ORIGINS")
      .argParser(collect)
      .default([]),
    new Option(`${HTTP_TOKEN_FILE_FLAG} <path>`, "file holding a bearer token every API request must send (required off loopback)").env(
      HTTP_TOKEN_FILE_ENV,
    ),
    new Option("--max-write-bytes <n>", "largest body write-file accepts; past it the answer is 413 and nothing changes")
      .env("AGENTD_MAX_WRITE_BYTES")
      .default(String(DEFAULT_MAX_WRITE_BYTES)),
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

function parseAllowedHost(value: string): string {
  if (/[/\s@]/.test(value) || value.startsWith(":")) {
    throw new UsageError("--allowed-host", `"${value}" is not a host name (for example my-workspace.example.com)`);
  }
  return value.toLowerCase();
}

function parseAllowedOrigin(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || `${url.origin}/` !== url.href.replace(/\/?$/, "/")) {
    throw new UsageError("--allowed-origin", `"${value}" is not an origin (scheme://host[:port], for example https://app.example.com)`);
  }
  return url.origin;
}

/** A non-loopback listener must be behind the bearer token: anyone who can reach it could run commands. */
function requireTokenOffLoopback(addr: HostPort, token: string | undefined): HostPort {
  if (!isLoopbackName(addr.host) && token === undefined) {
    throw new UsageError(
      "--http-addr",
      `${formatHostPort(addr)} is not a loopback address: set ${HTTP_TOKEN_FILE_FLAG} so requests need a bearer token`,
    );
  }
  return addr;
}

/** Validates raw option values into a Config; throws UsageError naming the flag. */
export function resolveConfig(opts: ServeOptions): Config {
  const coderUrl = opts.coderUrl ? parseUrl(opts.coderUrl, "--coder-url") : undefined;
  if (coderUrl && !opts.token && !opts.tokenFile) {
    throw new UsageError("--token", "required with --coder-url (or use --token-file)");
  }
  const httpToken = opts.httpTokenFile ? readHttpTokenFile(opts.httpTokenFile) : undefined;
  return {
    httpAddr: requireTokenOffLoopback(parseHostPort(opts.httpAddr, "--http-addr"), httpToken),
    boundarySocket: nonEmpty(opts.boundarySocket, "--boundary-socket"),
    agentSocket: nonEmpty(opts.agentSocket, "--agent-socket"),
    dataDir: path.resolve(nonEmpty(opts.dataDir, "--data-dir")),
    coderUrl,
    token: opts.token || (opts.tokenFile ? readTokenFile(opts.tokenFile) : undefined),
    tokenFile: opts.tokenFile || undefined,
    workdir: opts.workdir ? path.resolve(opts.workdir) : undefined,
    logLevel: parseLevel(opts.logLevel, "--log-level"),
    logFormat: opts.logFormat,
    maxProcesses: parsePositiveInt(opts.maxProcesses, "--max-processes"),
    boundarySpoolBytes: parsePositiveInt(opts.boundarySpoolBytes, "--boundary-spool-bytes"),
    boundaryLogRing: parsePositiveInt(opts.boundaryLogRing, "--boundary-log-ring"),
    gitWatchPollSeconds: parsePositiveInt(opts.gitWatchPollInterval, "--git-watch-poll-interval"),
    maxFsWatchedRepos: parsePositiveInt(opts.maxFsWatchedRepos, "--max-fs-watched-repos"),
    allowedHosts: (opts.allowedHost ?? []).map(parseAllowedHost),
    allowedOrigins: (opts.allowedOrigin ?? []).map(parseAllowedOrigin),
    httpToken,
    maxWriteBytes: parsePositiveInt(opts.maxWriteBytes, "--max-write-bytes"),
  };
}
