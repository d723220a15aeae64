import type { Logger } from "../log.js";
import { changesText } from "./messages.js";
import type { PathStore } from "./path-store.js";
import type { RepoResult, RepoSubscriber } from "./repo-scan.js";
import { formatRfc3339Nano, nowNs } from "./rfc3339.js";
import type { ScanHub } from "./scan-hub.js";

/** What a watcher needs from the git watch part. */
export interface WatcherDeps {
  pathStore: PathStore;
  hub: ScanHub;
  log: Logger;
  /**
   * Watched when the chat has no tracked path (agentgit's working-directory
   * fallback, so a chat keeps its diff after an agent restart); undefined: none.
   */
  workdir: string | undefined;
}

interface Root {
  release: () => void;
  /** (branch, origin, diff) last sent, undefined before the first send. */
  sent: { branch: string; remoteOrigin: string; unifiedDiff: string } | undefined;
}

/**
 * The watch behind one WebSocket connection: it follows one chat's tracked
 * paths (or the working directory while there are none), subscribes to
 * their repositories' shared scans, and turns the results into Coder's
 * `changes` messages: only repositories whose branch, origin or diff
 * changed since this connection last heard of them, or a heartbeat when
 * none did. Connect, a path notification and `refresh` ask for fresh scans
 * of every repository of the chat (on connect, a repository under a live
 * file-system watch answers from its last scan) and send one message once
 * all have answered; results of scans others asked for (file-system
 * events, the poll, other connections) are sent as they come.
 */
export class GitWatcher implements RepoSubscriber {
  private readonly roots = new Map<string, Root>();
  /** Tracked path → the root it resolved to. */
  private readonly resolved = new Map<string, string>();
  /** Roots whose fresh result this connection waits for → when it asked (epoch ns). */
  private readonly awaiting = new Map<string, bigint>();
  /** Results held until the awaited ones are in, so they go out as one message. */
  private readonly collected = new Map<string, RepoResult>();
  private readonly unsubscribe: (() => void) | undefined;
  private closed = false;
  private wanted = false;
  private refreshWanted = false;
  /** The pending request is the one made on connect, which a recent enough shared result can answer. */
  private connectOnly = false;
  private pathsDirty = true;
  private running = false;

  constructor(
    private readonly chatId: string | undefined,
    private readonly deps: WatcherDeps,
    private readonly send: (body: Buffer) => void,
  ) {
    if (!chatId) return;
    this.unsubscribe = deps.pathStore.subscribe(chatId, () => {
      this.pathsDirty = true;
      this.trigger("paths");
    });
    if (this.paths().length > 0) this.trigger("connect");
  }

  /** A client `refresh`: fresh scans, cancelling ones in progress. */
  refresh(): void {
    this.trigger("refresh");
  }

  /** Stops everything: the path subscription and every repository subscription. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    for (const root of this.roots.values()) root.release();
    this.roots.clear();
    this.awaiting.clear();
    this.collected.clear();
  }

  /** See RepoSubscriber. */
  onResults(results: readonly RepoResult[], memo: Map<string, Buffer>): void {
    let mine = false;
    for (const r of results) {
      if (!this.roots.has(r.root)) continue;
      mine = true;
      this.collected.set(r.root, r);
      const asked = this.awaiting.get(r.root);
      if (asked !== undefined && r.startNs >= asked) this.awaiting.delete(r.root);
    }
    if (mine && this.awaiting.size === 0) this.flush(memo);
  }

  /** The chat's tracked paths, or the working directory while it has none. */
  private paths(): string[] {
    const tracked = this.deps.pathStore.getPaths(this.chatId!);
    if (tracked.length > 0 || this.deps.workdir === undefined) return tracked;
    return [this.deps.workdir];
  }

  private trigger(kind: "connect" | "paths" | "refresh"): void {
    if (!this.chatId || this.closed) return;
    this.connectOnly = kind === "connect" && (this.connectOnly || !this.wanted);
    this.wanted = true;
    this.refreshWanted ||= kind === "refresh";
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.wanted && !this.closed) {
        this.wanted = false;
        const refresh = this.refreshWanted;
        this.refreshWanted = false;
        if (this.pathsDirty) {
          this.pathsDirty = false;
          await this.syncRoots();
          if (this.closed) return;
        }
        const onConnect = this.connectOnly;
        this.connectOnly = false;
        const asked = nowNs();
        const roots = [...this.roots.keys()];
        // Every root is awaited before any is asked, since an answer can come at once.
        for (const root of roots) {
          // An earlier, still unanswered request keeps its time, so steady triggers cannot starve the message.
          if (!this.awaiting.has(root)) this.awaiting.set(root, asked);
        }
        for (const root of roots) {
          if (onConnect) this.deps.hub.requestOnConnect(root, this);
          else this.deps.hub.request(root, refresh);
        }
      }
    } catch (err) {
      this.deps.log.warn({ err }, "git watch stopped");
      this.close();
    } finally {
      this.running = false;
    }
  }

  /** Resolves paths not seen before to repository roots and subscribes to new roots. */
  private async syncRoots(): Promise<void> {
    const paths = this.paths().filter((p) => !this.resolved.has(p));
    const roots = await Promise.all(paths.map((p) => this.deps.hub.resolveRoot(p)));
    if (this.closed) return;
    paths.forEach((p, i) => {
      const root = roots[i];
      if (root === undefined) return;
      this.resolved.set(p, root);
      if (this.roots.has(root)) return;
      this.roots.set(root, { release: this.deps.hub.subscribe(root, this), sent: undefined });
    });
  }

  /** Sends what was collected as one message, unless git is missing for all of it. */
  private flush(memo: Map<string, Buffer>): void {
    let scannedNs: bigint | undefined;
    let available = false;
    const included: RepoResult[] = [];
    for (const [root, r] of this.collected) {
      if (scannedNs === undefined || r.startNs < scannedNs) scannedNs = r.startNs;
      switch (r.outcome.kind) {
        case "ok":
          available = true;
          if (this.changed(root, r)) included.push(r);
          break;
        case "removed":
          available = true;
          included.push(r);
          this.forget(root);
          break;
        case "error":
          available = true;
          break;
        case "unavailable":
          break;
      }
    }
    this.collected.clear();
    if (!available || scannedNs === undefined) return;
    const key = `${scannedNs}\n${included.map((r) => `${r.root}\n${r.startNs}`).join("\n")}`;
    let body = memo.get(key);
    if (!body) {
      body = Buffer.from(
        changesText(
          formatRfc3339Nano(scannedNs),
          included.map((r) => r.entryText),
        ),
      );
      memo.set(key, body);
    }
    this.send(body);
  }

  /** Records `r`'s state as sent and says whether it differs from what was sent before. */
  private changed(root: string, r: RepoResult): boolean {
    const entry = this.roots.get(root);
    if (!entry || r.outcome.kind !== "ok") return false;
    const state = r.outcome.state;
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
    this.awaiting.delete(root);
    for (const [p, r] of this.resolved) if (r === root) this.resolved.delete(p);
  }
}
