import net from "node:net";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { Agent as AgentService } from "../../gen/coder/agent/v2/agent_pb.js";
import { AgentSocket } from "../../gen/coder/agentsocket/v1/agentsocket_pb.js";
import { createDrpcTransport } from "../drpc/transport.js";
import { errnoCode } from "../errors.js";

/** A typed client of the agent socket's AgentSocket service. */
export type AgentSocketClient = Client<typeof AgentSocket>;
/** A typed client of the sub-agent calls the agent socket relays. */
export type SubAgentClient = Client<typeof AgentService>;

function dialUnix(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath);
    conn.once("connect", () => {
      conn.off("error", reject);
      resolve(conn);
    });
    conn.once("error", reject);
  });
}

function transport(socketPath: string) {
  return createDrpcTransport({ dial: () => dialUnix(socketPath) });
}

/** A client of the AgentSocket service at `socketPath`; each call dials a fresh connection. */
export function agentSocketClient(socketPath: string): AgentSocketClient {
  return createClient(AgentSocket, transport(socketPath));
}

/** A client of the sub-agent relay on the agent socket at `socketPath`. */
export function subAgentClient(socketPath: string): SubAgentClient {
  return createClient(AgentService, transport(socketPath));
}

/** True when `err` means the socket could not be reached at all (missing, refused, not permitted). */
export function isDialError(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Unavailable && errnoCode(err.cause) !== undefined;
}
