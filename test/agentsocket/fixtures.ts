import path from "node:path";
import { createClient, type ServiceImpl } from "@connectrpc/connect";
import { Registry } from "prom-client";
import { Agent as AgentService, type UpdateAppStatusRequest } from "../../gen/coder/agent/v2/agent_pb.js";
import { AgentSocketPart } from "../../src/agentsocket/agent-socket.js";
import { createInProcessTransport } from "../../src/coderd/in-process-transport.js";
import type { Upstream } from "../../src/coderd/upstream.js";
import { createLogger } from "../../src/log.js";
import { tempDir } from "../helpers/agentd.js";

/** Hex text (spaces allowed) as bytes. */
export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

/** An upstream that records what it is sent; `connected` can be switched off. */
export class RecordingUpstream implements Upstream {
  readonly name = "upstream";
  readonly description = "recording";
  connected = true;
  readonly appStatuses: UpdateAppStatusRequest[] = [];
  readonly client;

  constructor(overrides: Partial<ServiceImpl<typeof AgentService>> = {}) {
    const impl: Partial<ServiceImpl<typeof AgentService>> = {
      updateAppStatus: (req) => {
        this.appStatuses.push(req);
        return {};
      },
      listSubAgents: () => ({ agents: [] }),
      ...overrides,
    };
    this.client = createClient(AgentService, createInProcessTransport(AgentService, impl));
  }

  isConnected(): boolean {
    return this.connected;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}
}

/** An AgentSocketPart listening in a fresh temporary directory, with its own metrics registry. */
export async function startSocketPart(upstream: Upstream = new RecordingUpstream()) {
  const dir = tempDir("agentsocket-");
  const socketPath = path.join(dir, "run", "agent.sock");
  const registry = new Registry();
  const part = new AgentSocketPart(socketPath, upstream, createLogger("silent"), registry);
  await part.start();
  return { part, socketPath, dir, registry };
}

