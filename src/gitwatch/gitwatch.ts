import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import { chatScope } from "../http/chat.js";
import { readBody, writeError, writeJson } from "../http/json.js";
import type { HttpServer } from "../http/server.js";
import { lazily } from "../lazy.js";
import type { Logger } from "../log.js";
import type { Part } from "../part.js";
import type { WatchEngine } from "./engine.js";
import { GitWatchMetrics } from "./metrics.js";
import { PathStore } from "./path-store.js";
import type { KeepAlive } from "./route.js";

/** The WebSocket endpoint coderd dials on the agent (workspacesdk AgentConn.WatchGit). */
export const GIT_WATCH_PATH = "/api/v0/git/watch";
/** REST endpoint that adds (POST) or lists (GET) the paths of the calling chat. */
export const GIT_PATHS_PATH = "/api/v0/git/paths";
/** git children running at once across all watchers (2 per core leaves room for the rest of the agent). */
export const DEFAULT_MAX_GIT_PROCESSES = 8;

/** Options for the git watch part. */
export interface GitWatchOptions {
  /** Where tracked paths persist; undefined keeps them in memory. */
  dataDir: string | undefined;
  log: Logger;
  registry: Registry;
  /** Interval of the fingerprint poll. */
  pollIntervalMs: number;
  /** Repositories watched for file-system events at once; the rest rely on the poll. */
  maxFsWatchedRepos: number;
  maxGitProcesses?: number;
  /** Ping interval and pong timeout (default 30 s and 5 s). */
  keepAlive?: KeepAlive;
  /** The git executable (default `git` on PATH). */
  gitBinary?: string;
  /** Watched for a chat that has no tracked path (agentd's default process directory); undefined: nothing. */
  workdir?: string | undefined;
}

/**
 * Git watch: the path store fed by chat tools, and the WebSocket that streams
 * each chat's repository diffs (Coder's agentgit), plus file-system events
 * and persistence of tracked paths. The path store and the metrics live from
 * the start; what watches repositories (the WatchEngine) loads with the
 * first watcher, WebSocket or Connect: until a watcher subscribes, tracked
 * paths need no scan.
 */
export class GitWatch implements Part {
  readonly name = "gitwatch";
  readonly pathStore: PathStore;
  readonly metrics: GitWatchMetrics;
  private readonly engine: () => Promise<WatchEngine>;
  /** The engine once built; what closing has to stop. */
  private built: WatchEngine | undefined;
  /** Set once connections are being closed: an upgrade still waiting for the engine is dropped. */
  private closing = false;

  constructor(opts: GitWatchOptions) {
    const log = opts.log;
    this.metrics = new GitWatchMetrics(opts.registry);
    this.pathStore = new PathStore({
      dataDir: opts.dataDir,
      log,
      onEvict: (reason) => this.metrics.pathEvictions.inc({ reason }),
    });
    this.engine = lazily(async () => {
      const { WatchEngine } = await import("./engine.js");
      this.built = new WatchEngine({
        pathStore: this.pathStore,
        metrics: this.metrics,
        log,
        pollIntervalMs: opts.pollIntervalMs,
        maxFsWatchedRepos: opts.maxFsWatchedRepos,
        maxGitProcesses: opts.maxGitProcesses ?? DEFAULT_MAX_GIT_PROCESSES,
        keepAlive: opts.keepAlive,
        gitBinary: opts.gitBinary,
        workdir: opts.workdir,
      });
      return this.built;
    });
  }

  /** Mounts the WebSocket, the REST endpoint and the Connect service. */
  register(http: HttpServer): void {
    http.upgrade(GIT_WATCH_PATH, async (req, socket, head, url) => {
      const engine = await this.engine();
      if (this.closing) socket.destroy();
      else engine.route.handleUpgrade(req, socket, head, url);
    });
    http.route("POST", GIT_PATHS_PATH, (req, res) => this.postPaths(req, res));
    http.route("GET", GIT_PATHS_PATH, (req, res) => this.getPaths(req, res));
    http.connectLazily(async () => {
      const [{ GitWatchService }, { gitWatchService }] = await Promise.all([
        import("../../gen/agentd/gitwatch/v1/gitwatch_pb.js"),
        import("./service.js"),
      ]);
      return (router) =>
        router.service(
          GitWatchService,
          gitWatchService(this.pathStore, async (ids) => (await this.engine()).opener(ids)),
        );
    });
  }

  /**
   * What Coder's process API does when a chat's process exits: its workdir,
   * when the request named one, becomes a tracked path of the chat and its
   * ancestors; otherwise their watchers are just told to rescan.
   */
  trackProcessExit(e: { chatId: string | undefined; ancestorChatIds: string[]; workdir: string | undefined }): void {
    if (!e.chatId) return;
    const ids = [e.chatId, ...e.ancestorChatIds];
    if (e.workdir) this.pathStore.addPaths(ids, [e.workdir]);
    else this.pathStore.notify(ids);
  }

  async start(): Promise<void> {
    this.pathStore.load();
  }

  /** Ends every git watch WebSocket (1001); called before the HTTP server closes. */
  async closeConnections(): Promise<void> {
    this.closing = true;
    await this.built?.route.close();
  }

  async stop(): Promise<void> {
    this.closing = true;
    await this.built?.close();
    await this.pathStore.flush();
  }

  private async postPaths(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const scope = chatScope(req.headers);
    if (!scope.chatId) return writeError(res, 400, "A valid Coder-Chat-Id header is required.");
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req)).toString("utf8"));
    } catch (err) {
      return writeError(res, 400, "Request body must be JSON.", err instanceof Error ? err.message : undefined);
    }
    const paths = (body as { paths?: unknown } | null)?.paths;
    if (!Array.isArray(paths) || !paths.every((p) => typeof p === "string")) {
      return writeError(res, 400, "Request body must be {\"paths\": [string, ...]}.");
    }
    this.pathStore.addPaths([scope.chatId, ...scope.ancestorChatIds], paths);
    writeJson(res, 200, { paths: this.pathStore.getPaths(scope.chatId) });
  }

  private getPaths(req: IncomingMessage, res: ServerResponse): void {
    const scope = chatScope(req.headers);
    if (!scope.chatId) return writeError(res, 400, "A valid Coder-Chat-Id header is required.");
    writeJson(res, 200, { paths: this.pathStore.getPaths(scope.chatId) });
  }
}
