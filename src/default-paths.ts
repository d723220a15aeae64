import os from "node:os";
import path from "node:path";

/**
 * agentd's own directory for its sockets: `$XDG_RUNTIME_DIR/agentd`, else
 * `$TMPDIR/agentd-<uid>`. Coder's Go agent listens at `$TMPDIR/boundary-audit.sock`
 * and `$XDG_RUNTIME_DIR/coder-agent.sock` (or `/tmp/coder-agent-<uid>.sock`);
 * agentd's defaults stay clear of both so the two run side by side, and
 * clients are pointed at agentd through Coder's own env vars.
 */
export function defaultRuntimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) return path.join(runtime, "agentd");
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  return path.join(os.tmpdir(), `agentd-${uid}`);
}

/** Default for `--boundary-socket`: `boundary-audit.sock` in agentd's runtime directory. */
export function defaultBoundarySocket(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(defaultRuntimeDir(env), "boundary-audit.sock");
}

/** Default for `--agent-socket` and the CLIs' `--socket-path`: `agent.sock` in agentd's runtime directory. */
export function defaultAgentSocket(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(defaultRuntimeDir(env), "agent.sock");
}

/** `$XDG_DATA_HOME/agentd`, else `~/.local/share/agentd`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_DATA_HOME || path.join(os.homedir(), ".local", "share");
  return path.join(base, "agentd");
}
