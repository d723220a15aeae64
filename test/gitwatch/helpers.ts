import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after } from "node:test";
import { Registry } from "prom-client";
import WebSocket from "ws";
import { DEFAULT_GIT_WATCH_POLL_SECONDS, DEFAULT_MAX_FS_WATCHED_REPOS } from "../../src/config.js";
import { GitWatch, type GitWatchOptions } from "../../src/gitwatch/gitwatch.js";
import type { GitServerMessage } from "../../src/gitwatch/messages.js";
import { HttpServer } from "../../src/http/server.js";
import { createLogger } from "../../src/log.js";
import { tempDir } from "../helpers/agentd.js";

/**
 * A maker of fresh temporary directories (symlinks resolved, so they compare
 * equal to repository roots); all are removed after the calling file's tests.
 */
export function freshDirs(prefix: string): () => string {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  return () => {
    const d = fs.realpathSync(tempDir(prefix));
    dirs.push(d);
    return d;
  };
}

/** Runs git in `cwd` and returns stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** A fresh repository on branch main with one committed README, its root symlink-free. */
export function initRepo(dir: string, files: Record<string, string> = { "README.md": "# Project\n" }): string {
  fs.mkdirSync(dir, { recursive: true });
  git(dir, "-c", "init.defaultBranch=main", "init", "-q");
  git(dir, "config", "user.name", "Test");
  git(dir, "config", "user.email", "test@example.com");
  git(dir, "config", "commit.gpgsign", "false");
  for (const [name, content] of Object.entries(files)) write(dir, name, content);
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", "initial");
  return fs.realpathSync(dir);
}

/** Writes a file, creating parent directories. */
export function write(root: string, name: string, content: string | Buffer): string {
  const p = path.join(root, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
}

/** A git watch part served over a real HTTP server on a free loopback port. */
export interface WatchServer {
  gitwatch: GitWatch;
  http: HttpServer;
  registry: Registry;
  url: string;
  close(): Promise<void>;
}

/** Starts a GitWatch on its own HttpServer. */
export async function startWatchServer(opts: Partial<GitWatchOptions> = {}): Promise<WatchServer> {
  const log = createLogger("silent");
  const registry = new Registry();
  const http = new HttpServer({ host: "127.0.0.1", port: 0 }, log, registry);
  const gitwatch = new GitWatch({
    dataDir: undefined,
    log,
    registry,
    pollIntervalMs: DEFAULT_GIT_WATCH_POLL_SECONDS * 1000,
    maxFsWatchedRepos: DEFAULT_MAX_FS_WATCHED_REPOS,
    ...opts,
  });
  gitwatch.register(http);
  await gitwatch.start();
  await http.listen();
  const { port } = http.address();
  return {
    gitwatch,
    http,
    registry,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await gitwatch.stop();
      await http.close();
    },
  };
}

/** A WebSocket client that queues every message it receives. */
export class WatchClient {
  readonly messages: GitServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters = new Set<() => void>();
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.messages.push(JSON.parse(String(data)) as GitServerMessage);
      this.waiters.forEach((w) => w());
    });
    ws.on("error", () => undefined);
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
  }

  /** Connects to `<base>/api/v0/git/watch` with the given query string. */
  static async connect(base: string, query: string, opts: WebSocket.ClientOptions = {}): Promise<WatchClient> {
    const ws = new WebSocket(`${base.replace(/^http/, "ws")}/api/v0/git/watch${query}`, opts);
    // Listening from the start: a first message can arrive with the handshake, before "open" is handled.
    const client = new WatchClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    return client;
  }

  send(value: unknown): void {
    this.ws.send(typeof value === "string" ? value : JSON.stringify(value));
  }

  /**
   * Resolves with the first message from index `from` on that matches `pred`
   * (so callers can skip what they saw before).
   */
  next(
    pred: (m: GitServerMessage) => boolean = () => true,
    opts: { from?: number; timeoutMs?: number } = {},
  ): Promise<GitServerMessage> {
    const from = opts.from ?? 0;
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.messages.slice(from).find(pred);
        if (!hit) return;
        cleanup();
        resolve(hit);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching message; got ${JSON.stringify(this.messages).slice(0, 2000)}`));
      }, opts.timeoutMs ?? 20_000);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** The repository entry for `root` in a message, if any. */
export function repoIn(m: GitServerMessage, root: string) {
  return m.repositories?.find((r) => r.repo_root === root);
}

/** The sum of a metric's samples whose labels include `labels`; 0 before any sample exists. */
export async function metricSum(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Polls `cond` every 25 ms until it holds; throws after `timeoutMs`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}
