import { performance } from "node:perf_hooks";
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  Agent as AgentService,
  ReportBoundaryLogsResponseSchema,
  type ReportBoundaryLogsRequest,
} from "../../gen/coder/agent/v2/agent_pb.js";
import { batchRequest, decodeLogBatch } from "../boundary/log-batch.js";
import { walked, WireWalker } from "../boundary/wire-check.js";
import type { RequestDecoders } from "../drpc/server.js";
import { knownEncoding } from "./known-encoding.js";

/** Longest latency the histogram tells apart; slower logs count in its last bucket (ms). */
const MAX_TRACKED_LATENCY_MS = 120_000;

/** Tags (field number << 3 | wire type) read from the request bytes (agent.proto, timestamp.proto). */
const REQUEST_LOGS_TAG = (1 << 3) | 2;
const LOG_TIME_TAG = (2 << 3) | 2;
const SECONDS_TAG = 1 << 3;
const NANOS_TAG = 2 << 3;

/** One second's worth of boundary logs a stats-only peer received. */
export interface BoundaryLogSecond {
  /** Wall-clock time the second ended (ms since the epoch). */
  at: number;
  /** Logs received in it. */
  logs: number;
  /** ReportBoundaryLogs calls that carried them. */
  calls: number;
  /** Latency histogram: milliseconds from each log's `time` to its arrival → logs. */
  latencyMs: Record<number, number>;
  /** Share of the second the peer's event loop was busy (0–1): near 1, the peer sets the pace. */
  busy: number;
}

/**
 * An Agent service for benchmarks: ReportBoundaryLogs keeps nothing but a
 * count of the logs it received and how late each arrived (now minus the
 * log's own time), handed out once per second. It still receives every
 * call over the real wire protocol and checks every request as fully as a
 * decode would (see `decoders`), but reads only the logs' times out of the
 * bytes, so that the peer, standing in for a Go coderd, costs little of a
 * machine it shares with the agent it measures.
 */
export class BoundaryLogStats {
  private logs = 0;
  private calls = 0;
  private latency = new Map<number, number>();
  private loop = performance.eventLoopUtilization();

  /** The service to serve (only ReportBoundaryLogs; the rest answer Unimplemented). */
  service(): Partial<ServiceImpl<typeof AgentService>> {
    return {
      reportBoundaryLogs: (request) => {
        const now = Date.now();
        this.calls++;
        const bytes = knownEncoding(request);
        if (!bytes || !walked(() => this.countWire(bytes, now))) this.countDecoded(request, now);
        return create(ReportBoundaryLogsResponseSchema);
      },
    };
  }

  /**
   * How the peer takes ReportBoundaryLogs requests: checked by the boundary
   * proxy's own decoder (a schema-directed walk, or protobuf-es where the
   * walk does not cover the bytes; invalid bytes fail the call), carrying
   * their bytes, with `logs` decoded only if read.
   */
  decoders(): RequestDecoders<typeof AgentService> {
    return { reportBoundaryLogs: (bytes) => batchRequest(decodeLogBatch(bytes)) };
  }

  /** What arrived since the last call, and starts counting afresh. */
  take(): BoundaryLogSecond {
    const loop = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(loop, this.loop).utilization;
    this.loop = loop;
    const second = { at: Date.now(), logs: this.logs, calls: this.calls, latencyMs: Object.fromEntries(this.latency), busy };
    this.logs = 0;
    this.calls = 0;
    this.latency = new Map();
    return second;
  }

  /** Counts the logs of well-formed request bytes and the latency of those with a time. */
  private countWire(bytes: Uint8Array, now: number): void {
    const walker = new WireWalker(bytes);
    let logs = 0;
    const times: number[] = [];
    while (walker.pos < bytes.length) {
      const tag = walker.tag(bytes.length);
      if (tag !== REQUEST_LOGS_TAG) {
        walker.skip(tag & 7, bytes.length);
        continue;
      }
      logs++;
      const logEnd = walker.length(bytes.length);
      while (walker.pos < logEnd) {
        const field = walker.tag(logEnd);
        if (field === LOG_TIME_TAG) times.push(timeMs(walker, walker.length(logEnd)));
        else walker.skip(field & 7, logEnd);
      }
    }
    this.logs += logs;
    for (const ms of times) this.arrived(now - ms);
  }

  private countDecoded(request: ReportBoundaryLogsRequest, now: number): void {
    this.logs += request.logs.length;
    for (const log of request.logs) if (log.time) this.arrived(now - timestampMs(log.time));
  }

  private arrived(lateMs: number): void {
    const ms = Math.min(MAX_TRACKED_LATENCY_MS, Math.max(0, Math.round(lateMs)));
    this.latency.set(ms, (this.latency.get(ms) ?? 0) + 1);
  }
}

/** The ms since the epoch of a google.protobuf.Timestamp whose fields end at `end` (the last of a repeated field wins, as in a decode). */
function timeMs(walker: WireWalker, end: number): number {
  let seconds = 0;
  let nanos = 0;
  while (walker.pos < end) {
    const tag = walker.tag(end);
    if (tag === SECONDS_TAG) seconds = walker.varint(end);
    else if (tag === NANOS_TAG) nanos = walker.varint(end);
    else walker.skip(tag & 7, end);
  }
  return seconds * 1000 + nanos / 1e6;
}
