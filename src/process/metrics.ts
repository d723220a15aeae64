import { Counter, Gauge, type Registry } from "prom-client";

/** How a process ended, the `outcome` label of agentd_process_exited_total. */
export type ExitOutcome = "success" | "failure" | "signal" | "timeout" | "error";

/** The process part's Prometheus metrics, registered on the agent's registry. */
export class ProcessMetrics {
  readonly started: Counter;
  readonly running: Gauge;
  readonly exited: Counter<"outcome">;
  readonly outputBytes: Counter;
  /** Captured bytes not yet added to outputBytes; folded in at scrape time so capture stays cheap. */
  private pendingOutputBytes = 0;
  readonly rejected: Counter<"reason">;
  readonly followDroppedBytes: Counter;
  readonly evicted: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.started = new Counter({
      name: "agentd_process_started_total",
      help: "Processes started.",
      registers,
    });
    this.running = new Gauge({
      name: "agentd_process_running",
      help: "Processes running now.",
      registers,
    });
    this.exited = new Counter({
      name: "agentd_process_exited_total",
      help: "Processes that ended, by outcome (success, failure, signal, timeout, error).",
      labelNames: ["outcome"],
      registers,
    });
    const flush = () => this.flushOutputBytes();
    this.outputBytes = new Counter({
      name: "agentd_process_output_bytes_total",
      help: "Output bytes captured from processes (before head/tail truncation).",
      registers,
      collect: flush,
    });
    this.rejected = new Counter({
      name: "agentd_process_start_rejected_total",
      help: "Starts refused, by reason (limit, token_conflict, closed, spawn).",
      labelNames: ["reason"],
      registers,
    });
    this.followDroppedBytes = new Counter({
      name: "agentd_process_follow_dropped_bytes_total",
      help: "Output bytes not delivered to a follower that fell behind.",
      registers,
    });
    this.evicted = new Counter({
      name: "agentd_process_evicted_total",
      help: "Exited processes forgotten before the 5-minute reap because too many were kept.",
      registers,
    });
  }

  /** Counts captured output; called for every chunk, so it only adds to a number. */
  addOutputBytes(n: number): void {
    this.pendingOutputBytes += n;
  }

  /** Moves the pending byte count into the counter. */
  flushOutputBytes(): void {
    if (this.pendingOutputBytes === 0) return;
    this.outputBytes.inc(this.pendingOutputBytes);
    this.pendingOutputBytes = 0;
  }
}
