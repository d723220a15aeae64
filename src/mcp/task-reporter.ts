import { ConnectError } from "@connectrpc/connect";
import { agentSocketClient, isDialError, type AgentSocketClient } from "../agentsocket/client.js";
import { appStatusState, messageTooLong, type AppStatusStateName } from "../cli/app-status.js";
import { MAX_APP_STATUS_MESSAGE_BYTES } from "../coderd/embedded.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";

/** A report call gives up after this long so the model is never left waiting on a wedged socket. */
export const REPORT_TIMEOUT_MS = 30_000;

/** The tool error for a summary over coderd's limit, as Coder's toolsdk words it (it counts bytes). */
export const SUMMARY_TOO_LONG = `summary must be less than ${MAX_APP_STATUS_MESSAGE_BYTES} characters`;

/** What `coder_report_task` receives. */
export interface TaskReport {
  summary: string;
  link: string;
  state: AppStatusStateName;
}

/** The outcome of one report: sent, skipped as a repeat, or failed with a reason for the model. */
export type ReportOutcome = { ok: true; sent: boolean } | { ok: false; error: string };

/**
 * Sends task reports as UpdateAppStatus{slug, state, message=summary,
 * uri=link} through the agent socket, with `coder exp mcp server`'s rules
 * for consecutive reports: an empty summary keeps the last one sent (and
 * its link too when the link is also empty), and a report identical to the
 * last one sent is dropped. Failures are returned, never thrown, and are
 * not remembered, so the same report sent again is tried again.
 */
export class TaskReporter {
  private readonly client: AgentSocketClient;
  private last: TaskReport | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly slug: string | undefined,
    private readonly log: Logger,
  ) {
    this.client = agentSocketClient(socketPath);
  }

  /** Sends one report unless it repeats the last one sent; never throws. */
  async report(r: TaskReport): Promise<ReportOutcome> {
    if (!this.slug) {
      return {
        ok: false,
        error: "task reporting not available: no app status slug is configured (set --app-status-slug or CODER_MCP_APP_STATUS_SLUG)",
      };
    }
    if (messageTooLong(r.summary)) return { ok: false, error: SUMMARY_TOO_LONG };
    const next = this.withPrevious(r);
    if (this.last && next.state === this.last.state && next.summary === this.last.summary && next.link === this.last.link) {
      this.log.debug({ state: r.state }, "identical task report dropped");
      return { ok: true, sent: false };
    }
    const req = { slug: this.slug, state: appStatusState(next.state), message: next.summary, uri: next.link };
    try {
      await this.client.updateAppStatus(req, { timeoutMs: REPORT_TIMEOUT_MS });
    } catch (err) {
      this.log.warn({ err: errorText(err) }, "task report failed");
      if (isDialError(err)) {
        return { ok: false, error: `Failed to connect to agent socket at ${this.socketPath}: ${errorText((err as ConnectError).cause)}` };
      }
      return { ok: false, error: err instanceof ConnectError ? err.rawMessage : errorText(err) };
    }
    this.last = next;
    this.log.info({ state: r.state, slug: this.slug }, "task reported");
    return { ok: true, sent: true };
  }

  /** `r` with an empty summary (and then an empty link) taken from the last report sent. */
  private withPrevious(r: TaskReport): TaskReport {
    if (r.summary !== "" || !this.last) return r;
    return { state: r.state, summary: this.last.summary, link: r.link === "" ? this.last.link : r.link };
  }
}
