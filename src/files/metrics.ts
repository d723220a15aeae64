import { Counter, type Registry } from "prom-client";
import type { MatchPass } from "./edit-engine.js";

/** The files API's Prometheus metrics, registered on the agent's registry. */
export class FilesMetrics {
  readonly requests: Counter<"route" | "code">;
  readonly readBytes: Counter;
  readonly writtenBytes: Counter;
  readonly edits: Counter<"pass">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: "agentd_files_requests_total",
      help: "Files API requests, by route and HTTP status code (Connect calls by the status of the same outcome).",
      labelNames: ["route", "code"],
      registers,
    });
    this.readBytes = new Counter({
      name: "agentd_files_read_bytes_total",
      help: "File bytes read for files API requests.",
      registers,
    });
    this.writtenBytes = new Counter({
      name: "agentd_files_written_bytes_total",
      help: "File bytes written by write-file and edit-files.",
      registers,
    });
    this.edits = new Counter({
      name: "agentd_files_edits_total",
      help: "Edits applied by edit-files, by the matching pass that applied them (exact, trailing_whitespace, indentation).",
      labelNames: ["pass"],
      registers,
    });
  }

  /** Counts the passes of edits that were written. */
  countPasses(passes: readonly MatchPass[]): void {
    for (const pass of passes) this.edits.inc({ pass });
  }
}
