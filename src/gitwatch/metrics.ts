import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The git watch metrics, registered on the agent's registry. */
export class GitWatchMetrics {
  readonly scans: Counter<"result">;
  readonly scanDuration: Histogram;
  readonly bytesSent: Counter;
  readonly connections: Gauge;
  readonly fsWatchedRepos: Gauge;
  readonly fsWatchLimitHits: Counter;
  readonly fsWatchErrors: Counter;
  readonly pathEvictions: Counter<"reason">;
  readonly scanCancels: Counter<"reason">;
  readonly fingerprintChecks: Counter<"result">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.scans = new Counter({
      name: "agentd_gitwatch_repo_scans_total",
      help: "Repository scans, one per repository whatever the number of connections watching it, by result (ok, removed, error).",
      labelNames: ["result"],
      registers,
    });
    this.scanDuration = new Histogram({
      name: "agentd_gitwatch_scan_duration_seconds",
      help: "Time to scan one repository (fingerprint included).",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.bytesSent = new Counter({
      name: "agentd_gitwatch_sent_bytes_total",
      help: "Bytes of WebSocket messages sent to git watch clients.",
      registers,
    });
    this.connections = new Gauge({
      name: "agentd_gitwatch_connections",
      help: "Open git watch WebSocket connections.",
      registers,
    });
    this.fsWatchedRepos = new Gauge({
      name: "agentd_gitwatch_fs_watched_repos",
      help: "Repositories whose worktree is watched for file-system events.",
      registers,
    });
    this.fsWatchLimitHits = new Counter({
      name: "agentd_gitwatch_fs_watch_limit_hits_total",
      help: "Repositories left to the poll because the file-system watch limit was reached.",
      registers,
    });
    this.fsWatchErrors = new Counter({
      name: "agentd_gitwatch_fs_watch_errors_total",
      help: "File-system watches that failed and fell back to the poll.",
      registers,
    });
    this.pathEvictions = new Counter({
      name: "agentd_gitwatch_path_store_evictions_total",
      help: "Tracked paths or chats dropped to stay within the path store bounds, by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.scanCancels = new Counter({
      name: "agentd_gitwatch_scan_cancels_total",
      help: "Scans cancelled in progress, their git children killed, by reason (refresh, unwatched).",
      labelNames: ["reason"],
      registers,
    });
    this.fingerprintChecks = new Counter({
      name: "agentd_gitwatch_fingerprint_checks_total",
      help: "Poll checks of a repository's fingerprint, by result (unchanged, changed: a rescan follows).",
      labelNames: ["result"],
      registers,
    });
  }
}
