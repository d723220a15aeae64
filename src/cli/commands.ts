import type { Command } from "commander";

/**
 * One subcommand: its name and description are known up front (for `agentd
 * --help` and "did you mean"), its module is imported only when it runs, so
 * `agentd sync ping` does not load the daemon, the MCP SDK or SQLite.
 */
export interface LazyCommand {
  name: string;
  description: string;
  load(): Promise<Command>;
}

/** Every `agentd` subcommand, in the order `agentd --help` lists them. */
export const COMMANDS: readonly LazyCommand[] = [
  {
    name: "serve",
    description: "run the agentd daemon",
    load: async () => (await import("./serve.js")).serveCommand(),
  },
  {
    name: "sync",
    description: "order startup scripts with units on the agent socket (coder exp sync)",
    load: async () => (await import("./sync.js")).syncCommand(),
  },
  {
    name: "app-status",
    description: "report an app's status (working, idle, complete, failure) to coderd through the agent socket",
    load: async () => (await import("./app-status.js")).appStatusCommand(),
  },
  {
    name: "subagent",
    description: "manage sub-agents (for example dev containers) through the agent socket",
    load: async () => (await import("./subagent.js")).subagentCommand(),
  },
  {
    name: "mcp",
    description: "run an MCP server on stdio with the coder_report_task tool",
    load: async () => (await import("./mcp.js")).mcpCommand(),
  },
  {
    name: "coderd-peer",
    description: "run a stand-in coderd that accepts the agent RPC endpoint and logs every call it receives",
    load: async () => (await import("./coderd-peer.js")).coderdPeerCommand(),
  },
];
