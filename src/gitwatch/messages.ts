import type { RepoState } from "./scanner.js";

/** One repository in a `changes` message (codersdk.WorkspaceAgentRepoChanges). */
export interface RepoChangesJson {
  repo_root: string;
  branch: string;
  remote_origin?: string;
  unified_diff?: string;
  removed?: boolean;
}

/** What the agent sends (codersdk.WorkspaceAgentGitServerMessage); empty fields are omitted. */
export interface GitServerMessage {
  type: "changes" | "error";
  scanned_at?: string;
  repositories?: RepoChangesJson[];
  message?: string;
}

/** The reply to a client message whose type is not `refresh`. */
export const UNKNOWN_MESSAGE_TYPE = "unknown message type";

/** A repository entry with Coder's omit-when-empty fields. */
export function repoChangesJson(state: RepoState): RepoChangesJson {
  const entry: RepoChangesJson = { repo_root: state.repoRoot, branch: state.branch };
  if (state.remoteOrigin) entry.remote_origin = state.remoteOrigin;
  if (state.unifiedDiff) entry.unified_diff = state.unifiedDiff;
  return entry;
}

/** The entry announcing that a repository is gone. */
export function removedJson(repoRoot: string): RepoChangesJson {
  return { repo_root: repoRoot, branch: "", removed: true };
}

/**
 * The text of a `changes` message from repository entries already encoded
 * as JSON; byte for byte what JSON.stringify gives for the same GitServerMessage.
 */
export function changesText(scannedAt: string, entries: readonly string[]): string {
  const head = `{"type":"changes","scanned_at":${JSON.stringify(scannedAt)}`;
  return entries.length === 0 ? `${head}}` : `${head},"repositories":[${entries.join(",")}]}`;
}
