import { Counter, Gauge, type Registry } from "prom-client";

/** Why a batch or log entry never reached coderd; the `reason` label values. */
export type DropReason =
  | "buffer_full"
  | "forward_failed"
  | "spool_full"
  | "undeliverable"
  | "boundary_channel_full"
  | "boundary_batch_full";

/** Help text of Coder's batches_dropped_total (agent/boundarylogproxy/metrics.go). */
const BATCHES_DROPPED_HELP =
  "Total number of boundary log batches dropped before reaching coderd. Reason: buffer_full = the agent's internal buffer is full, meaning boundary is producing logs faster than the agent can forward them to coderd; forward_failed = the agent failed to send the batch to coderd, potentially because coderd is unreachable or the connection was interrupted.";
/** Help text of Coder's logs_dropped_total (agent/boundarylogproxy/metrics.go). */
const LOGS_DROPPED_HELP =
  "Total number of individual boundary log entries dropped before reaching coderd. Reason: buffer_full = the agent's internal buffer is full; forward_failed = the agent failed to send the batch to coderd; boundary_channel_full = boundary's internal send channel overflowed, meaning boundary is generating logs faster than it can batch and send them; boundary_batch_full = boundary's outgoing batch buffer overflowed after a failed flush, meaning boundary could not write to the agent's socket.";
/** Help text of Coder's batches_forwarded_total (agent/boundarylogproxy/metrics.go). */
const BATCHES_FORWARDED_HELP =
  "Total number of boundary log batches successfully forwarded to coderd. Compare with batches_dropped_total to compute a drop rate.";

/** What the spool reports on each scrape. */
export interface SpoolStats {
  batches: number;
  bytes: number;
  /** Seconds since the oldest spooled batch was written; 0 when empty. */
  oldestAgeSeconds: number;
}

/**
 * The proxy's metrics: Coder's three (same names, labels and help text) plus
 * agentd's spool and connection gauges, all on the agent's registry.
 */
export class BoundaryMetrics {
  readonly batchesDropped: Counter<"reason">;
  readonly logsDropped: Counter<"reason">;
  readonly batchesForwarded: Counter;
  readonly connections: Gauge;
  readonly connectionsRefused: Counter;
  readonly connectionsEvicted: Counter;

  constructor(registry: Registry, spoolStats: () => SpoolStats) {
    const registers = [registry];
    this.batchesDropped = new Counter({
      name: "agent_boundary_log_proxy_batches_dropped_total",
      help: BATCHES_DROPPED_HELP,
      labelNames: ["reason"],
      registers,
    });
    this.logsDropped = new Counter({
      name: "agent_boundary_log_proxy_logs_dropped_total",
      help: LOGS_DROPPED_HELP,
      labelNames: ["reason"],
      registers,
    });
    this.batchesForwarded = new Counter({
      name: "agent_boundary_log_proxy_batches_forwarded_total",
      help: BATCHES_FORWARDED_HELP,
      registers,
    });
    this.connections = new Gauge({
      name: "agentd_boundary_connections",
      help: "Boundary connections currently open on the log proxy socket.",
      registers,
    });
    this.connectionsRefused = new Counter({
      name: "agentd_boundary_connections_refused_total",
      help: "Boundary connections closed on accept because the proxy already had its maximum open.",
      registers,
    });
    this.connectionsEvicted = new Counter({
      name: "agentd_boundary_connections_evicted_total",
      help: "Idle boundary connections closed to make room for a new one at the connection cap.",
      registers,
    });
    const gauge = (name: string, help: string, read: (s: SpoolStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(spoolStats()));
        },
      });
    gauge("agentd_boundary_spool_batches", "Boundary log batches waiting in the durable spool.", (s) => s.batches);
    gauge("agentd_boundary_spool_bytes", "Bytes of boundary log batches waiting in the durable spool.", (s) => s.bytes);
    gauge(
      "agentd_boundary_spool_oldest_age_seconds",
      "Age of the oldest boundary log batch in the durable spool, 0 when it is empty.",
      (s) => s.oldestAgeSeconds,
    );
  }

  /** Counts whole batches (`batches` received ones, `logs` entries in all) as dropped. */
  dropBatch(reason: DropReason, logs: number, batches = 1): void {
    this.batchesDropped.inc({ reason }, batches);
    if (logs > 0) this.logsDropped.inc({ reason }, logs);
  }
}
