import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { setTimeout as sleep } from "node:timers/promises";
import {
  StreamLogsResponseSchema,
  type BoundaryLogService,
  type StreamLogsResponse,
} from "../../gen/agentd/boundary/v1/boundary_pb.js";
import type { BoundaryLogRing } from "./log-ring.js";

/**
 * Shortest time between two stream messages: at 5,000 logs/s this makes
 * messages of about 500 logs instead of 500 messages a second.
 */
export const STREAM_COALESCE_MS = 100;
/** Logs in one stream message at most, so a large backlog is sent in parts. */
export const MAX_LOGS_PER_MESSAGE = 2_000;

/** `agentd.boundary.v1.BoundaryLogService` over the proxy's log ring. */
export function boundaryLogService(ring: BoundaryLogRing): ServiceImpl<typeof BoundaryLogService> {
  return {
    async *streamLogs(req, ctx): AsyncGenerator<StreamLogsResponse> {
      let cursor = ring.cursorForBacklog(req.backlog);
      let wake: (() => void) | undefined;
      const unsubscribe = ring.subscribe(() => wake?.());
      const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      try {
        yield create(StreamLogsResponseSchema, { capacity: ring.capacity });
        while (!ctx.signal.aborted) {
          if (cursor === ring.end) {
            await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
            wake = undefined;
            continue;
          }
          const read = ring.read(cursor);
          cursor = read.cursor;
          for (let i = 0; i < read.logs.length || i === 0; i += MAX_LOGS_PER_MESSAGE) {
            yield create(StreamLogsResponseSchema, {
              logs: read.logs.slice(i, i + MAX_LOGS_PER_MESSAGE),
              skipped: i === 0 ? BigInt(read.skipped) : 0n,
              capacity: ring.capacity,
            });
          }
          await sleep(STREAM_COALESCE_MS, undefined, { signal: ctx.signal }).catch(() => undefined);
        }
      } finally {
        unsubscribe();
      }
    },
  };
}
