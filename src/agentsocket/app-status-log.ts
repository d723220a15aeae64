import { UpdateAppStatusRequest_AppStatusState, type UpdateAppStatusRequest } from "../../gen/coder/agent/v2/agent_pb.js";

/** App statuses kept for the dashboard; older ones are dropped (a task reports a handful per step). */
export const MAX_APP_STATUSES = 500;

/** One app status as reported through the agent socket. */
export interface AppStatusEntry {
  slug: string;
  /** working, idle, complete or failure (codersdk.WorkspaceAppStatusState). */
  state: string;
  message: string;
  uri: string;
  timeMs: number;
}

/**
 * The app statuses forwarded to coderd, newest last, bounded by
 * MAX_APP_STATUSES, so the dashboard can show what agents said about their
 * tasks without asking coderd.
 */
export class AppStatusLog {
  private readonly entries: AppStatusEntry[] = [];

  constructor(
    private readonly max = MAX_APP_STATUSES,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a status that was forwarded. */
  record(req: UpdateAppStatusRequest): void {
    const state = UpdateAppStatusRequest_AppStatusState[req.state]?.toLowerCase() ?? String(req.state);
    this.entries.push({ slug: req.slug, state, message: req.message, uri: req.uri, timeMs: this.now() });
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
  }

  /** Every retained status, newest first. */
  newestFirst(): AppStatusEntry[] {
    return [...this.entries].reverse();
  }
}
