import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { Command, Option } from "commander";
import type { LevelWithSilent } from "pino";
import { UsageError } from "../errors.js";
import { createLogger, LOG_LEVELS } from "../log.js";
import { createMcpServer } from "../mcp/server.js";
import { TaskReporter } from "../mcp/task-reporter.js";
import { socketPathOption } from "./agent-socket-cli.js";

/** Version the MCP server announces. */
const MCP_SERVER_VERSION = "0.1.0";

interface McpOptions {
  socketPath: string;
  appStatusSlug?: string;
  logLevel: string;
}

/**
 * `agentd mcp`: an MCP server on stdio whose `coder_report_task` tool
 * reports app status through the agent socket. Stdout carries only MCP;
 * logs go to stderr.
 */
export function mcpCommand(): Command {
  const cmd = new Command("mcp")
    .description("run an MCP server on stdio with the coder_report_task tool")
    .addOption(socketPathOption())
    .addOption(
      new Option("--app-status-slug <slug>", "slug of the workspace app task reports go to").env(
        "CODER_MCP_APP_STATUS_SLUG",
      ),
    )
    .addOption(new Option("--log-level <level>", "log level on stderr").env("AGENTD_LOG_LEVEL").default("warn"));
  cmd.action(async (o: McpOptions) => {
    if (!(LOG_LEVELS as readonly string[]).includes(o.logLevel)) {
      throw new UsageError("--log-level", `"${o.logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
    }
    const level = o.logLevel as LevelWithSilent;
    const log = createLogger(level, process.stderr).child({ component: "mcp" });
    const reporter = new TaskReporter(o.socketPath, o.appStatusSlug || undefined, log);
    const server = createMcpServer(reporter, MCP_SERVER_VERSION);
    const transport = new StdioServerTransport();
    const closed = new Promise<void>((resolve) => {
      process.stdin.once("end", resolve);
      server.server.onclose = resolve;
    });
    await server.connect(transport);
    log.info({ socketPath: o.socketPath, slug: o.appStatusSlug }, "mcp server ready on stdio");
    await closed;
    await server.close();
  });
  return cmd;
}
