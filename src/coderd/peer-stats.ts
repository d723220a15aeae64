import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Agent as AgentService, ReportBoundaryLogsResponseSchema } from "../../gen/coder/agent/v2/agent_pb.js";

/** Longest latency the histogram tells apart; slower logs count in its last bucket (ms). */
const MAX_TRACKED_LATENCY_MS = 120_000;

/** One second's worth of boundary logs a stats-only peer received. */
export interface BoundaryLogSecond {
  /** Wall-clock time the second ended (ms since the epoch). */
  at: number;
  /** Logs received in it. */
  logs: number;
  /** Latency histogram: milliseconds from each log's `time` to its arrival → logs. */
  latencyMs: Record<number, number>;
}

/**
 * An Agent service for benchmarks: ReportBoundaryLogs keeps nothing but a
 * count of the logs it received and how late each arrived (now minus the
 * log's own time), handed out once per second. It still receives every
 * call over the real wire protocol and decodes every request.
 */
export class BoundaryLogStats {
  private logs = 0;
  private latency = new Map<number, number>();

  /** The service to serve (only ReportBoundaryLogs; the rest answer Unimplemented). */
  service(): Partial<ServiceImpl<typeof AgentService>> {
    return {
      reportBoundaryLogs: (request) => {
        const now = Date.now();
        this.logs += request.logs.length;
        for (const log of request.logs) {
          if (!log.time) continue;
          const ms = Math.min(MAX_TRACKED_LATENCY_MS, Math.max(0, Math.round(now - timestampMs(log.time))));
          this.latency.set(ms, (this.latency.get(ms) ?? 0) + 1);
        }
        return create(ReportBoundaryLogsResponseSchema);
      },
    };
  }

  /** What arrived since the last call, and starts counting afresh. */
  take(): BoundaryLogSecond {
    const second = { at: Date.now(), logs: this.logs, latencyMs: Object.fromEntries(this.latency) };
    this.logs = 0;
    this.latency = new Map();
    return second;
  }
}
