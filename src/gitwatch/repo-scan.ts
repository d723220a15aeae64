import type { Logger } from "../log.js";
import { repoFingerprint } from "./fingerprint.js";
import type { FsWatchHub } from "./fs-watch.js";
import type { GitRunner } from "./git.js";
import { removedJson, repoChangesJson } from "./messages.js";
import type { GitWatchMetrics } from "./metrics.js";
import { nowNs } from "./rfc3339.js";
import type { RepoScanner, ScanOutcome } from "./scanner.js";

/** Minimum time between the starts of two scans of one repository (agentgit scanCooldown). */
export const SCAN_COOLDOWN_MS = 1000;
const COOLDOWN_NS = BigInt(SCAN_COOLDOWN_MS) * 1_000_000n;

/**
 * What one scan of a repository found, shared by every connection watching
 * it; a fingerprint check that finds nothing changed confirms it again with
 * a later start.
 */
export class RepoResult {
  constructor(
    readonly root: string,
    readonly outcome: ScanOutcome,
    /** When the scan (or the check confirming it) started, epoch nanoseconds: the `scanned_at` it stands for. */
    readonly startNs: bigint,
    private readonly cache: { text?: string } = {},
  ) {}

  /** The same outcome, confirmed unchanged by a check that started at `startNs`. */
  confirmedAt(startNs: bigint): RepoResult {
    return new RepoResult(this.root, this.outcome, startNs, this.cache);
  }

  /** The JSON of this repository's `changes` entry, encoded once for every connection. */
  get entryText(): string {
    this.cache.text ??= JSON.stringify(
      this.outcome.kind === "ok" ? repoChangesJson(this.outcome.state) : removedJson(this.root),
    );
    return this.cache.text;
  }
}

/** A connection that receives the results of the repositories it watches. */
export interface RepoSubscriber {
  /**
   * New results (one scan, or one poll round); `memo` holds message bodies
   * already encoded for this delivery, so identical messages share one buffer.
   */
  onResults(results: readonly RepoResult[], memo: Map<string, Buffer>): void;
}

/** What a repository's scans need. */
export interface RepoScanDeps {
  scanner: RepoScanner;
  git: GitRunner;
  fsHub: FsWatchHub;
  metrics: GitWatchMetrics;
  log: Logger;
  /** Hands finished results to the subscribers. */
  deliver: (results: RepoResult[]) => void;
}

interface Running {
  abort: AbortController;
  /** Started for a refresh: another refresh queues behind it instead of cancelling it. */
  refresh: boolean;
}

/**
 * The scans of one repository, shared by every connection watching it: at
 * most one at a time, starts at least SCAN_COOLDOWN_MS apart, requests made
 * meanwhile coalesced into one follow-up scan. A refresh cancels a scan in
 * progress (its git children are killed) and starts a fresh one; so does
 * the last subscriber leaving. File-system events on the repository request
 * scans; the poll calls `check`.
 */
export class RepoScan {
  readonly subscribers = new Set<RepoSubscriber>();
  private last: RepoResult | undefined;
  /** Fingerprint taken just before the last scan; undefined when none was taken. */
  private fingerprint: string | undefined;
  /** Start of the last completed scan, for the cooldown. */
  private lastScanNs: bigint | undefined;
  /** Start of the last completed scan or check, for the poll's skip rule. */
  private lastActivityNs: bigint | undefined;
  private running: Running | undefined;
  private pending = false;
  private nextIsRefresh = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly life = new AbortController();
  private readonly releaseWatch: () => void;

  constructor(
    readonly root: string,
    private readonly deps: RepoScanDeps,
  ) {
    this.releaseWatch = deps.fsHub.acquire(root, () => this.request(false));
  }

  /** Asks for a scan; `refresh` cancels one in progress that a refresh did not start. */
  request(refresh: boolean): void {
    if (this.life.signal.aborted) return;
    const running = this.running;
    if (running) {
      if (!refresh || running.refresh) {
        this.pending = true;
        return;
      }
      this.running = undefined;
      running.abort.abort();
      this.deps.metrics.scanCancels.inc({ reason: "refresh" });
    }
    this.nextIsRefresh ||= refresh;
    this.schedule();
  }

  /**
   * A connecting socket's request: when the last scan succeeded, none is
   * pending or running, and the file-system watch is live with no event
   * waiting, nothing changed since that scan started, so `subscriber` gets
   * its result at once, confirmed now without running git; otherwise a scan
   * is requested as usual. A thousand sockets opening on one repository so
   * cost no scan each.
   */
  requestOnConnect(subscriber: RepoSubscriber): void {
    const last = this.last;
    const idle = !this.running && !this.timer && !this.pending;
    if (last?.outcome.kind === "ok" && idle && this.deps.fsHub.isSettled(this.root)) {
      subscriber.onResults([last.confirmedAt(nowNs())], new Map());
      return;
    }
    this.request(false);
  }

  /**
   * The poll: unless a scan is under way or one ran (or a check) within
   * `skipWithinNs`, confirms the last result without git when the
   * repository's file-system watch is live, else compares a fresh
   * fingerprint and rescans only when it changed. Resolves with the
   * confirmed result, if any.
   */
  async check(skipWithinNs: bigint): Promise<RepoResult | undefined> {
    if (this.life.signal.aborted || this.running || this.timer) return undefined;
    const start = nowNs();
    if (this.lastActivityNs !== undefined && start - this.lastActivityNs < skipWithinNs) return undefined;
    const last = this.last;
    if (last?.outcome.kind !== "ok") {
      this.request(false);
      return undefined;
    }
    if (this.deps.fsHub.isLive(this.root)) {
      // An event waiting out its debounce is about to request a scan, which answers instead.
      if (!this.deps.fsHub.isSettled(this.root)) return undefined;
      this.lastActivityNs = start;
      return last.confirmedAt(start);
    }
    if (this.fingerprint === undefined) {
      this.request(false);
      return undefined;
    }
    const fingerprint = await this.takeFingerprint(this.life.signal);
    // A scan started (or the repository was dropped) meanwhile: that one answers.
    if (this.life.signal.aborted || this.running || this.timer || this.last !== last) return undefined;
    if (fingerprint !== this.fingerprint) {
      this.deps.metrics.fingerprintChecks.inc({ result: "changed" });
      this.request(false);
      return undefined;
    }
    this.deps.metrics.fingerprintChecks.inc({ result: "unchanged" });
    this.lastActivityNs = start;
    return last.confirmedAt(start);
  }

  /** Stops for good: the timer, the file-system watch, and any scan in progress (its git children are killed). */
  close(): void {
    if (this.life.signal.aborted) return;
    if (this.running) this.deps.metrics.scanCancels.inc({ reason: "unwatched" });
    this.life.abort();
    this.running?.abort.abort();
    this.running = undefined;
    clearTimeout(this.timer);
    this.releaseWatch();
  }

  /**
   * Starts a scan on the next turn of the event loop (so every connection
   * asking in this one shares it), or once SCAN_COOLDOWN_MS have passed
   * since the previous scan started. Timers may fire early against the
   * clock, so the remainder is rechecked.
   */
  private schedule(): void {
    if (this.timer || this.life.signal.aborted) return;
    const left = this.lastScanNs === undefined ? 0n : this.lastScanNs + COOLDOWN_NS - nowNs();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (left > 0n) this.schedule();
        else void this.run();
      },
      left > 0n ? Math.ceil(Number(left) / 1e6) : 0,
    );
    this.timer.unref();
  }

  private async run(): Promise<void> {
    const abort = new AbortController();
    const running: Running = { abort, refresh: this.nextIsRefresh };
    this.running = running;
    this.pending = false;
    this.nextIsRefresh = false;
    const startNs = nowNs();
    const stopTimer = this.deps.metrics.scanDuration.startTimer();
    // Taken before the scan, so an edit made while it runs shows at the next check.
    const fingerprint = this.deps.fsHub.isLive(this.root) ? undefined : await this.takeFingerprint(abort.signal);
    const outcome = abort.signal.aborted ? undefined : await this.deps.scanner.scan(this.root, abort.signal);
    if (abort.signal.aborted || outcome === undefined) return;
    stopTimer();
    this.running = undefined;
    this.record(outcome);
    this.last = new RepoResult(this.root, outcome, startNs);
    this.fingerprint = outcome.kind === "ok" ? fingerprint : undefined;
    this.lastScanNs = startNs;
    this.lastActivityNs = startNs;
    this.deps.deliver([this.last]);
    if (this.pending) this.request(false);
  }

  /** Counts the scan; a failure is logged as a warning when it starts, then at debug while it lasts. */
  private record(outcome: ScanOutcome): void {
    if (outcome.kind === "unavailable") return;
    this.deps.metrics.scans.inc({ result: outcome.kind });
    if (outcome.kind !== "error") return;
    const level = this.last?.outcome.kind === "error" ? "debug" : "warn";
    this.deps.log[level]({ err: outcome.error, repoRoot: this.root }, "repository scan failed");
  }

  private async takeFingerprint(signal: AbortSignal): Promise<string | undefined> {
    try {
      return await repoFingerprint(this.deps.git, this.root, signal);
    } catch {
      return undefined;
    }
  }
}
