import path from "node:path";
import type { FSWatcher } from "chokidar";
import type { Logger } from "../log.js";
import type { GitRunner } from "./git.js";
import type { GitWatchMetrics } from "./metrics.js";

/** Events within this window become one notification (a save often writes several times). */
const FS_EVENT_DEBOUNCE_MS = 100;
/** Directories never watched, ignored or not: dependency trees are huge and churn. */
const NEVER_WATCHED_DIRS = new Set(["node_modules"]);
/** What under `.git` is watched: branch switches, staging, commits, remote changes. */
const WATCHED_GIT_PATHS = [".git/HEAD", ".git/index", ".git/config", ".git/packed-refs", ".git/refs"];

/** Options for an FsWatchHub. */
export interface FsWatchHubOptions {
  maxRepos: number;
  git: GitRunner;
  log: Logger;
  metrics: GitWatchMetrics;
}

interface RepoWatch {
  listeners: Set<() => void>;
  watcher: FSWatcher | undefined;
  timer: NodeJS.Timeout | undefined;
  /** chokidar finished its initial walk, so events are flowing. */
  ready: boolean;
  closed: boolean;
}

/**
 * File-system watches on repository worktrees, shared by every connection
 * watching the same repository. A change anywhere outside ignored
 * directories (and a few `.git` files) calls the repo's listeners, debounced.
 * Past `maxRepos` watched repositories new ones are left to the poll.
 */
export class FsWatchHub {
  private readonly repos = new Map<string, RepoWatch>();
  private readonly refused = new Set<string>();

  constructor(private readonly opts: FsWatchHubOptions) {}

  /** Calls `listener` on changes in `root`; returns the release. */
  acquire(root: string, listener: () => void): () => void {
    let repo = this.repos.get(root);
    if (!repo) {
      if (this.repos.size >= this.opts.maxRepos) {
        this.opts.metrics.fsWatchLimitHits.inc();
        if (!this.refused.has(root)) {
          this.refused.add(root);
          this.opts.log.warn(
            { repoRoot: root, maxRepos: this.opts.maxRepos },
            "file-system watch limit reached; repository falls back to the poll",
          );
        }
        return () => undefined;
      }
      repo = { listeners: new Set(), watcher: undefined, timer: undefined, ready: false, closed: false };
      this.repos.set(root, repo);
      void this.start(root, repo);
    }
    const entry = repo;
    const own = () => listener();
    entry.listeners.add(own);
    return () => {
      entry.listeners.delete(own);
      if (entry.listeners.size === 0) this.drop(root, entry);
    };
  }

  /** True while `root`'s watch is set up and delivering events (not refused, failed or still starting). */
  isLive(root: string): boolean {
    const repo = this.repos.get(root);
    return repo !== undefined && repo.ready && repo.watcher !== undefined;
  }

  /** True when `root`'s watch is live and holds no event still waiting out the debounce. */
  isSettled(root: string): boolean {
    return this.isLive(root) && this.repos.get(root)!.timer === undefined;
  }

  /** Closes every watch. */
  async close(): Promise<void> {
    const all = [...this.repos.entries()];
    await Promise.all(all.map(([root, repo]) => this.drop(root, repo)));
  }

  private async start(root: string, repo: RepoWatch): Promise<void> {
    const ignoredPaths = await this.ignoredPaths(root);
    // chokidar loads with the first watch: a daemon nobody watches a repository through never needs it.
    const { watch } = await import("chokidar");
    if (repo.closed) return;
    const ignored = (p: string): boolean => {
      const rel = path.relative(root, p);
      if (rel === "" || rel === ".git") return false;
      if (rel.startsWith(`.git${path.sep}`)) {
        return !WATCHED_GIT_PATHS.some((w) => rel === w || rel.startsWith(`${w}${path.sep}`));
      }
      // A nested repository's internals are its own watch's business, if it has one.
      const base = path.basename(rel);
      return ignoredPaths.has(rel) || NEVER_WATCHED_DIRS.has(base) || base === ".git";
    };
    const watcher = watch(root, { ignoreInitial: true, followSymlinks: false, ignored });
    repo.watcher = watcher;
    watcher.on("all", () => this.changed(repo));
    watcher.once("ready", () => {
      repo.ready = true;
      this.updateGauge();
      // Edits made while the watch was being set up raised no event: one
      // scan now shows them instead of the next poll.
      this.changed(repo);
    });
    watcher.on("error", (err) => {
      this.opts.metrics.fsWatchErrors.inc();
      this.opts.log.warn({ err, repoRoot: root }, "file-system watch failed; repository falls back to the poll");
      void watcher.close();
      if (repo.watcher === watcher) repo.watcher = undefined;
      repo.ready = false;
      this.updateGauge();
    });
  }

  /** Paths git ignores (top-level ignored directories collapse to one entry), relative to the root. */
  private async ignoredPaths(root: string): Promise<Set<string>> {
    try {
      const res = await this.opts.git.run(
        ["ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "--no-empty-directory", "-z"],
        { cwd: root },
      );
      if (res.code !== 0) return new Set();
      return new Set(
        res.stdout
          .toString("utf8")
          .split("\0")
          .filter((p) => p !== "")
          .map((p) => path.normalize(p.replace(/\/$/, ""))),
      );
    } catch {
      return new Set();
    }
  }

  private updateGauge(): void {
    let ready = 0;
    for (const repo of this.repos.values()) if (repo.ready) ready++;
    this.opts.metrics.fsWatchedRepos.set(ready);
  }

  private changed(repo: RepoWatch): void {
    if (repo.timer || repo.closed) return;
    repo.timer = setTimeout(() => {
      repo.timer = undefined;
      for (const listener of repo.listeners) listener();
    }, FS_EVENT_DEBOUNCE_MS);
    repo.timer.unref();
  }

  private async drop(root: string, repo: RepoWatch): Promise<void> {
    if (repo.closed) return;
    repo.closed = true;
    if (repo.timer) clearTimeout(repo.timer);
    this.repos.delete(root);
    this.updateGauge();
    await repo.watcher?.close();
  }
}
