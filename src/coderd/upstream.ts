import type { Client } from "@connectrpc/connect";
import type { Agent as AgentService } from "../../gen/coder/agent/v2/agent_pb.js";
import type { Part } from "../part.js";

/** Error text Coder's agent socket returns when there is no coderd connection. */
export const NOT_CONNECTED_MESSAGE = "agent not connected to coderd";

/** A typed client of Coder's Agent API, whatever carries it. */
export type AgentClient = Client<typeof AgentService>;

/**
 * The agent's link to coderd (or to the embedded upstream). Callers use
 * `client` and never learn which transport is behind it; while the link is
 * down, calls fail with Code.Unavailable.
 */
export interface Upstream extends Part {
  readonly client: AgentClient;
  /** True while calls can reach the upstream. */
  isConnected(): boolean;
  /** "embedded" or the coderd URL, for logs and /readyz. */
  readonly description: string;
}
