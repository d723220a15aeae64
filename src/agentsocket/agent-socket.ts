import type { ServiceImpl } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import { Agent as AgentService } from "../../gen/coder/agent/v2/agent_pb.js";
import { AgentSocket } from "../../gen/coder/agentsocket/v1/agentsocket_pb.js";
import type { Upstream } from "../coderd/upstream.js";
import { DrpcServer } from "../drpc/server.js";
import type { Logger } from "../log.js";
import type { Part } from "../part.js";
import { SocketWatch } from "../socket-watch.js";
import { AppStatusLog } from "./app-status-log.js";
import { agentSocketService } from "./service.js";
import { AGENT_SOCKET_FLAG, AgentSocketServer } from "./socket-server.js";
import { subAgentProxy } from "./subagent-proxy.js";
import { UnitGraph } from "./unit-graph.js";

/**
 * The agent socket part: one unit graph, Coder's AgentSocket service and the
 * sub-agent relay, served with dRPC on the unix socket at `socketPath`.
 * `service` is exposed so the composition root can also mount it on HTTP.
 */
export class AgentSocketPart implements Part {
  readonly name = "agent-socket";
  readonly graph = new UnitGraph();
  /** App statuses forwarded to coderd, for the dashboard. */
  readonly appStatuses = new AppStatusLog();
  readonly service: ServiceImpl<typeof AgentSocket>;
  private readonly server: AgentSocketServer;
  private readonly watch: SocketWatch;

  constructor(socketPath: string, upstream: Upstream, log: Logger, registry: Registry) {
    this.service = agentSocketService(this.graph, upstream, log, this.appStatuses);
    const drpc = new DrpcServer({ log });
    drpc.register(AgentSocket, this.service);
    drpc.register(AgentService, subAgentProxy(upstream));
    this.server = new AgentSocketServer(socketPath, drpc, log, registry);
    this.watch = new SocketWatch(socketPath, AGENT_SOCKET_FLAG, () => this.server.relisten(), log);
  }

  /** True while the unix socket accepts connections and its file is still ours (for `/readyz`). */
  get listening(): boolean {
    return this.server.listening && this.watch.intact;
  }

  async start(): Promise<void> {
    await this.server.listen();
    this.watch.start();
  }

  async stop(): Promise<void> {
    this.watch.stop();
    await this.server.close();
  }
}
