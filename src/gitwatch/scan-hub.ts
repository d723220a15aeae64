import type { Logger } from "../log.js";
import type { FsWatchHub } from "./fs-watch.js";
import type { GitRunner } from "./git.js";
import type { GitWatchMetrics } from "./metrics.js";
import { RepoScan, type RepoResult, type RepoSubscriber } from "./repo-scan.js";
import type { RepoScanner } from "./scanner.js";

/**
 * A poll tick skips a repository scanned or checked within this fraction of
 * the interval (agentgit skips its tick when a scan ran within the
 * interval; the margin absorbs timer jitter so a regular tick is never skipped).
 */
const POLL_SKIP_FRACTION = 0.9;
/**
 * A path found outside any repository is not asked again for this long, so
 * a thousand sockets of a chat whose paths are not in a repository cost one
 * `git rev-parse` per path, while a `git init` there still shows soon.
 */
const MISS_TTL_MS = 1000;

/** Options for a ScanHub. */
export interface ScanHubOptions {
  scanner: RepoScanner;
  git: GitRunner;
  fsHub: FsWatchHub;
  metrics: GitWatchMetrics;
  log: Logger;
  /** Interval of the fingerprint poll (newest agentgit: 5 s). */
  pollIntervalMs: number;
}

/**
 * The per-repository scan coordinator: one RepoScan per repository that
 * any connection watches, so a thousand sockets on one repository cost
 * one scan per trigger; a shared cache of path → repository root; and one
 * poll timer for every repository.
 */
export class ScanHub {
  private readonly repos = new Map<string, RepoScan>();
  /** Path → root, kept while the root is watched and not reported removed. */
  private readonly roots = new Map<string, string>();
  /** Path outside any repository → when to ask again (performance.now() ms). */
  private readonly misses = new Map<string, number>();
  private readonly resolving = new Map<string, Promise<string | undefined>>();
  private readonly poll: NodeJS.Timeout;
  private polling = false;
  private closed = false;

  constructor(private readonly opts: ScanHubOptions) {
    this.poll = setInterval(() => void this.pollRound(), opts.pollIntervalMs);
    this.poll.unref();
  }

  /** The repository root holding `p` (see RepoScanner.resolveRoot), resolved once for every connection. */
  resolveRoot(p: string): Promise<string | undefined> {
    const known = this.roots.get(p);
    if (known !== undefined) return Promise.resolve(known);
    const missUntil = this.misses.get(p);
    if (missUntil !== undefined && performance.now() < missUntil) return Promise.resolve(undefined);
    this.misses.delete(p);
    let pending = this.resolving.get(p);
    if (!pending) {
      pending = this.opts.scanner.resolveRoot(p).then((root) => {
        this.resolving.delete(p);
        if (this.closed) return root;
        if (root !== undefined) this.roots.set(p, root);
        else this.misses.set(p, performance.now() + MISS_TTL_MS);
        return root;
      });
      this.resolving.set(p, pending);
    }
    return pending;
  }

  /** Delivers `root`'s results to `subscriber` until the returned release is called. */
  subscribe(root: string, subscriber: RepoSubscriber): () => void {
    let repo = this.repos.get(root);
    if (!repo) {
      repo = new RepoScan(root, { ...this.opts, deliver: (results) => this.deliver(results) });
      this.repos.set(root, repo);
    }
    const entry = repo;
    entry.subscribers.add(subscriber);
    return () => {
      entry.subscribers.delete(subscriber);
      if (entry.subscribers.size > 0 || this.repos.get(root) !== entry) return;
      this.repos.delete(root);
      entry.close();
      this.forgetRoot(root);
    };
  }

  /** Asks for a scan of `root` (see RepoScan.request). */
  request(root: string, refresh: boolean): void {
    this.repos.get(root)?.request(refresh);
  }

  /** A connecting subscriber's request for `root` (see RepoScan.requestOnConnect). */
  requestOnConnect(root: string, subscriber: RepoSubscriber): void {
    this.repos.get(root)?.requestOnConnect(subscriber);
  }

  /** Stops the poll and every repository's scans. */
  close(): void {
    this.closed = true;
    clearInterval(this.poll);
    for (const repo of this.repos.values()) repo.close();
    this.repos.clear();
    this.roots.clear();
    this.misses.clear();
  }

  private async pollRound(): Promise<void> {
    if (this.polling || this.repos.size === 0) return;
    this.polling = true;
    try {
      const skipNs = BigInt(Math.floor(this.opts.pollIntervalMs * POLL_SKIP_FRACTION)) * 1_000_000n;
      const checked = await Promise.all([...this.repos.values()].map((repo) => repo.check(skipNs)));
      const confirmed = checked.filter((r): r is RepoResult => r !== undefined);
      if (confirmed.length > 0 && !this.closed) this.deliver(confirmed);
    } catch (err) {
      this.opts.log.warn({ err }, "git watch poll failed");
    } finally {
      this.polling = false;
    }
  }

  /** Hands results to every subscriber of their repositories, each once per delivery. */
  private deliver(results: RepoResult[]): void {
    const targets = new Set<RepoSubscriber>();
    for (const r of results) {
      for (const s of this.repos.get(r.root)?.subscribers ?? []) targets.add(s);
      if (r.outcome.kind === "removed") this.forgetRoot(r.root);
    }
    const memo = new Map<string, Buffer>();
    for (const s of targets) s.onResults(results, memo);
  }

  /**
   * The paths of a removed or no longer watched repository are resolved
   * afresh next time (it may come back, or be another repository), and the
   * cache stays as small as the set of watched repositories.
   */
  private forgetRoot(root: string): void {
    for (const [p, r] of this.roots) if (r === root) this.roots.delete(p);
  }
}
