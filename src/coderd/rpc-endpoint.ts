/**
 * Where and how an agent reaches coderd's Agent API
 * (coderd/workspaceagentsrpc.go, codersdk/agentsdk, tailnet/proto/version.go).
 */

/** The agent RPC endpoint, upgraded to a WebSocket carrying yamux. */
export const AGENT_RPC_PATH = "/api/v2/workspaceagents/me/rpc";
/** The header carrying the agent token (codersdk.SessionTokenHeader). */
export const SESSION_TOKEN_HEADER = "Coder-Session-Token";
/** Agent API major version (CurrentMajor). */
export const CURRENT_MAJOR = 2;
/** Newest Agent API minor version coderd serves (CurrentMinor). */
export const CURRENT_MINOR = 13;
