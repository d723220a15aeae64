import type { ServiceImpl } from "@connectrpc/connect";
import type { StatusService } from "../../gen/agentd/status/v1/status_pb.js";
import type { SpoolStats } from "../boundary/metrics.js";

/** What the status service reads, each when asked. */
export interface StatusSources {
  version: string;
  /** The coderd URL, undefined with the embedded upstream. */
  coderUrl: URL | undefined;
  coderdConnected: () => boolean;
  spoolStats: () => SpoolStats;
  readiness: () => Record<string, boolean>;
  startedAtMs: number;
}

/** `agentd.status.v1.StatusService`: the Link view's numbers. */
export function statusService(src: StatusSources): ServiceImpl<typeof StatusService> {
  return {
    getStatus() {
      const spool = src.spoolStats();
      return {
        version: src.version,
        upstreamKind: src.coderUrl ? "coderd" : "embedded",
        // Only the origin: a URL may carry credentials in its user info or query.
        coderdHost: src.coderUrl?.origin ?? "",
        coderdConnected: src.coderdConnected(),
        spoolBatches: BigInt(spool.batches),
        spoolBytes: BigInt(spool.bytes),
        spoolOldestAgeSeconds: spool.oldestAgeSeconds,
        checks: Object.entries(src.readiness()).map(([name, ready]) => ({ name, ready })),
        startedAtUnixMs: BigInt(src.startedAtMs),
      };
    },
  };
}
