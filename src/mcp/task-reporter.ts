import { ConnectError } from "@connectrpc/connect";
import { agentSocketClient, isDialError, type AgentSocketClient } from "../agentsocket/client.js";
import { appStatusState, messageTooLong, type AppStatusStateName } from "../cli/app-status.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";

/** A report call gives up after this long so the model is never left waiting on a wedged socket. */
export const REPORT_TIMEOUT_MS = 30_000;

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
 * uri=link} through the agent socket, dropping a report identical to the
 * last one sent. Failures are returned, never thrown.
 */
export class TaskReporter {
  private readonly client: AgentSocketClient;
  private last: string | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly slug: string | undefined,
    private readonly log: Logger,
  ) {
    this.client = agentSocketClient(socketPath);
  }

  async report(r: TaskReport): Promise<ReportOutcome> {
    if (!this.slug) {
      return {
        ok: false,
        error: "task reporting not available: no app status slug is configured (set --app-status-slug or CODER_MCP_APP_STATUS_SLUG)",
      };
    }
    const tooLong = messageTooLong(r.summary);
    if (tooLong) return { ok: false, error: `summary ${tooLong}` };
    const req = { slug: this.slug, state: appStatusState(r.state), message: r.summary, uri: r.link };
    const key = JSON.stringify(req);
    if (key === this.last) {
      this.log.debug({ state: r.state }, "identical task report dropped");
      return { ok: true, sent: false };
    }
    try {
      await this.client.updateAppStatus(req, { timeoutMs: REPORT_TIMEOUT_MS });
    } catch (err) {
      this.log.warn({ err: errorText(err) }, "task report failed");
      if (isDialError(err)) {
        return { ok: false, error: `Failed to connect to agent socket at ${this.socketPath}: ${errorText((err as ConnectError).cause)}` };
      }
      return { ok: false, error: err instanceof ConnectError ? err.rawMessage : errorText(err) };
    }
    this.last = key;
    this.log.info({ state: r.state, slug: this.slug }, "task reported");
    return { ok: true, sent: true };
  }
}
