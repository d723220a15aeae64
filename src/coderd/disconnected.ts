import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Agent as AgentService } from "../../gen/coder/agent/v2/agent_pb.js";
import { createInProcessTransport } from "./in-process-transport.js";
import type { AgentClient, Upstream } from "./upstream.js";

/** Error text Coder's agent socket returns when there is no coderd connection. */
export const NOT_CONNECTED_MESSAGE = "agent not connected to coderd";

function notConnected(): never {
  throw new ConnectError(NOT_CONNECTED_MESSAGE, Code.Unavailable);
}

/** An upstream that is never connected: every call fails with Unavailable. */
export class DisconnectedUpstream implements Upstream {
  readonly name = "upstream";
  readonly description = "none";
  readonly client: AgentClient = createClient(
    AgentService,
    createInProcessTransport(AgentService, {
      createSubAgent: notConnected,
      deleteSubAgent: notConnected,
      listSubAgents: notConnected,
      reportBoundaryLogs: notConnected,
      updateAppStatus: notConnected,
    }),
  );

  isConnected(): boolean {
    return false;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}
}
