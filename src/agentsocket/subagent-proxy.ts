import type { ServiceImpl } from "@connectrpc/connect";
import type { Agent as AgentService } from "../../gen/coder/agent/v2/agent_pb.js";
import type { Upstream } from "../coderd/upstream.js";
import { requireConnected } from "./service.js";

/**
 * The sub-agent calls of Coder's Agent API, relayed to coderd so local
 * tools (`agentd subagent`) can manage sub-agents without holding the agent
 * token. Served only on the owner-only agent socket; every other Agent
 * method stays unimplemented there.
 */
export function subAgentProxy(upstream: Upstream): Partial<ServiceImpl<typeof AgentService>> {
  return {
    async createSubAgent(req, ctx) {
      requireConnected(upstream);
      return upstream.client.createSubAgent(req, { signal: ctx.signal });
    },

    async listSubAgents(req, ctx) {
      requireConnected(upstream);
      return upstream.client.listSubAgents(req, { signal: ctx.signal });
    },

    async deleteSubAgent(req, ctx) {
      requireConnected(upstream);
      return upstream.client.deleteSubAgent(req, { signal: ctx.signal });
    },
  };
}
