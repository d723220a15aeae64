import type { Logger } from "../log.js";
import { FsWatchHub } from "./fs-watch.js";
import { GitRunner } from "./git.js";
import type { GitServerMessage } from "./messages.js";
import type { GitWatchMetrics } from "./metrics.js";
import type { PathStore } from "./path-store.js";
import { GitWatchRoute, type KeepAlive } from "./route.js";
import { ScanHub } from "./scan-hub.js";
import { RepoScanner } from "./scanner.js";
import type { WatchOpener } from "./watch-stream.js";
import { GitWatcher, type WatcherDeps } from "./watcher.js";

/** What the watch engine is built with: the git watch part's options and its path store and metrics. */
export interface WatchEngineOptions {
  pathStore: PathStore;
  metrics: GitWatchMetrics;
  log: Logger;
  pollIntervalMs: number;
  maxFsWatchedRepos: number;
  maxGitProcesses: number;
  keepAlive: KeepAlive | undefined;
  gitBinary: string | undefined;
  workdir: string | undefined;
}

/**
 * What watches repositories for git watch clients: the git runner, the
 * shared scans and their poll, file-system watches, and the WebSocket
 * route. The git watch part builds it for its first watcher.
 */
export class WatchEngine {
  /** Serves the git watch WebSocket. */
  readonly route: GitWatchRoute;
  private readonly fsHub: FsWatchHub;
  private readonly hub: ScanHub;
  private readonly deps: WatcherDeps;

  constructor(opts: WatchEngineOptions) {
    const { log, metrics } = opts;
    const git = new GitRunner(opts.maxGitProcesses, opts.gitBinary);
    this.fsHub = new FsWatchHub({ maxRepos: opts.maxFsWatchedRepos, git, log, metrics });
    this.hub = new ScanHub({
      scanner: new RepoScanner(git, log),
      git,
      fsHub: this.fsHub,
      metrics,
      log,
      pollIntervalMs: opts.pollIntervalMs,
    });
    this.deps = { pathStore: opts.pathStore, hub: this.hub, log, workdir: opts.workdir };
    this.route = new GitWatchRoute(this.deps, metrics, log, opts.keepAlive);
  }

  /** Opens one watcher per chat, as the WebSocket route does per connection. */
  opener(chatIds: string[]): WatchOpener {
    return (send) => {
      const watchers = chatIds.map(
        (id) => new GitWatcher(id, this.deps, (body) => send(id, JSON.parse(body.toString("utf8")) as GitServerMessage)),
      );
      return () => watchers.forEach((w) => w.close());
    };
  }

  /** Closes every WebSocket, then stops the scans, the poll and the file-system watches. */
  async close(): Promise<void> {
    await this.route.close();
    this.hub.close();
    await this.fsHub.close();
  }
}
