import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../log.js";
import type { FsWatchHub } from "./fs-watch.js";
import { removedJson, repoChangesJson, type GitServerMessage, type RepoChangesJson } from "./messages.js";
import type { GitWatchMetrics } from "./metrics.js";
import type { PathStore } from "./path-store.js";
import { formatRfc3339Nano, nowNs } from "./rfc3339.js";
import type { RepoScanner, RepoState } from "./scanner.js";

/** Minimum time between the starts of two scans (agentgit scanCooldown). */
export const SCAN_COOLDOWN_MS = 1000;

/** What a watcher needs from the git watch part. */
export interface WatcherDeps {
  pathStore: PathStore;
  scanner: RepoScanner;
  fsHub: FsWatchHub;
  metrics: GitWatchMetrics;
  log: Logger;
  /** Fallback scan interval (agentgit's fallbackPollInterval is 30 s). */
  pollIntervalMs: number;
}

interface Root {
  release: () => void;
  /** (branch, origin, diff) last sent, undefined before the first send. */
  sent: { branch: string; remoteOrigin: string; unifiedDiff: string } | undefined;
}

/**
 * The watch behind one WebSocket connection: it follows one chat's tracked
 * paths, scans their repositories when asked (connect, path notification,
 * refresh, file-system event, poll) at most once per SCAN_COOLDOWN_MS, and
 * sends only repositories whose branch, origin or diff changed, or a
 * heartbeat when none did. A file-system event rescans only its own
 * repository; every other trigger rescans them all.
 */
export class GitWatcher {
  private readonly roots = new Map<string, Root>();
  /** Tracked path → the root it resolved to. */
  private readonly resolved = new Map<string, string>();
  private readonly abort = new AbortController();
  private readonly unsubscribe: (() => void) | undefined;
  private poll: NodeJS.Timeout | undefined;
  private pending = false;
  /** The next scan covers every root; otherwise only `dirtyRoots`. */
  private scanAll = true;
  /** Roots a file-system event or a first sighting asked to scan. */
  private readonly dirtyRoots = new Set<string>();
  private pathsDirty = true;
  private running = false;
  /** When the previous scan started (its `scanned_at`), in epoch nanoseconds. */
  private lastScanStartNs: bigint | undefined;

  constructor(
    private readonly chatId: string | undefined,
    private readonly deps: WatcherDeps,
    private readonly send: (msg: GitServerMessage) => Promise<void>,
  ) {
    if (!chatId) return;
    this.unsubscribe = deps.pathStore.subscribe(chatId, () => {
      this.pathsDirty = true;
      this.request();
    });
    this.poll = setInterval(() => this.request(), deps.pollIntervalMs);
    this.poll.unref();
    if (deps.pathStore.getPaths(chatId).length > 0) this.request();
  }

  /** A client `refresh`. */
  refresh(): void {
    this.request();
  }

  /** Stops everything: timers, subscriptions, file watches and any running git child. */
  close(): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    this.unsubscribe?.();
    if (this.poll) clearInterval(this.poll);
    for (const root of this.roots.values()) root.release();
    this.roots.clear();
  }

  /** Asks for a scan of every root, or only of `root` when a file-system event names it. */
  private request(root?: string): void {
    if (!this.chatId || this.abort.signal.aborted) return;
    if (root === undefined) this.scanAll = true;
    else this.dirtyRoots.add(root);
    this.pending = true;
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    const signal = this.abort.signal;
    try {
      while (this.pending && !signal.aborted) {
        if (this.pathsDirty) {
          this.pathsDirty = false;
          await this.syncRoots();
        }
        if (this.roots.size === 0) {
          this.pending = false;
          continue;
        }
        await this.cooldown(signal);
        if (this.pathsDirty) continue;
        this.pending = false;
        await this.scan();
      }
    } catch (err) {
      if (!signal.aborted) this.deps.log.warn({ err }, "git watch stopped");
      this.close();
    } finally {
      this.running = false;
    }
  }

  /**
   * Waits until SCAN_COOLDOWN_MS have passed since the previous scan started.
   * Timers may fire early against the clock, so the remainder is rechecked.
   */
  private async cooldown(signal: AbortSignal): Promise<void> {
    if (this.lastScanStartNs === undefined) return;
    const due = this.lastScanStartNs + BigInt(SCAN_COOLDOWN_MS) * 1_000_000n;
    for (let left = due - nowNs(); left > 0n; left = due - nowNs()) {
      await sleep(Math.ceil(Number(left) / 1e6), undefined, { signal });
    }
  }

  /** Resolves tracked paths not seen before to repository roots and starts watching new roots. */
  private async syncRoots(): Promise<void> {
    const paths = this.deps.pathStore.getPaths(this.chatId!).filter((p) => !this.resolved.has(p));
    const signal = this.abort.signal;
    const roots = await Promise.all(paths.map((p) => this.deps.scanner.resolveRoot(p, signal)));
    if (signal.aborted) return;
    paths.forEach((p, i) => {
      const root = roots[i];
      if (root === undefined) return;
      this.resolved.set(p, root);
      if (this.roots.has(root)) return;
      const release = this.deps.fsHub.acquire(root, () => this.request(root));
      this.roots.set(root, { release, sent: undefined });
      this.dirtyRoots.add(root);
    });
  }

  private async scan(): Promise<void> {
    const signal = this.abort.signal;
    const roots = this.scanAll ? [...this.roots.keys()] : [...this.dirtyRoots].filter((r) => this.roots.has(r));
    this.scanAll = false;
    this.dirtyRoots.clear();
    if (roots.length === 0) return;
    this.lastScanStartNs = nowNs();
    const scannedAt = formatRfc3339Nano(this.lastScanStartNs);
    const stopTimer = this.deps.metrics.scanDuration.startTimer();
    const outcomes = await Promise.all(roots.map((r) => this.deps.scanner.scan(r, signal)));
    stopTimer();
    if (signal.aborted) return;
    const repositories: RepoChangesJson[] = [];
    outcomes.forEach((outcome, i) => {
      const root = roots[i]!;
      switch (outcome.kind) {
        case "ok":
          this.deps.metrics.scans.inc({ result: "ok" });
          if (this.changed(root, outcome.state)) repositories.push(repoChangesJson(outcome.state));
          break;
        case "removed":
          this.deps.metrics.scans.inc({ result: "removed" });
          repositories.push(removedJson(root));
          this.forget(root);
          break;
        case "error":
          this.deps.metrics.scans.inc({ result: "error" });
          this.deps.log.warn({ err: outcome.error, repoRoot: root }, "repository scan failed");
          break;
        case "unavailable":
          break;
      }
    });
    if (outcomes.every((o) => o.kind === "unavailable")) return;
    const msg: GitServerMessage = { type: "changes", scanned_at: scannedAt };
    if (repositories.length > 0) msg.repositories = repositories;
    await this.send(msg);
  }

  /** Records `state` as sent and says whether it differs from what was sent before. */
  private changed(root: string, state: RepoState): boolean {
    const entry = this.roots.get(root);
    if (!entry) return false;
    const prev = entry.sent;
    if (
      prev &&
      prev.branch === state.branch &&
      prev.remoteOrigin === state.remoteOrigin &&
      prev.unifiedDiff === state.unifiedDiff
    ) {
      return false;
    }
    entry.sent = { branch: state.branch, remoteOrigin: state.remoteOrigin, unifiedDiff: state.unifiedDiff };
    return true;
  }

  /** Drops a removed root; a later notification for one of its paths can bring it back. */
  private forget(root: string): void {
    this.roots.get(root)?.release();
    this.roots.delete(root);
    for (const [p, r] of this.resolved) if (r === root) this.resolved.delete(p);
  }
}
