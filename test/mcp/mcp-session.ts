import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { AGENTD_BIN } from "../helpers/agentd.js";

/** A running `agentd mcp` with the SDK client connected to it. */
export interface McpSession {
  client: Client;
  /** Errors the client saw on the stdio stream (non-MCP output would land here). */
  errors: Error[];
  stderr: () => string;
  close(): Promise<void>;
}

/** Spawns `bin/agentd mcp` with `args` and connects the SDK's client to it over stdio. */
export async function startMcp(args: string[], env: Record<string, string> = {}): Promise<McpSession> {
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  delete baseEnv.CODER_MCP_APP_STATUS_SLUG;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [AGENTD_BIN, "mcp", "--log-level", "debug", ...args],
    env: { ...baseEnv, ...env },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const client = new Client({ name: "agentd-test", version: "1.0.0" });
  const errors: Error[] = [];
  client.onerror = (err) => errors.push(err);
  await client.connect(transport);
  return { client, errors, stderr: () => stderr, close: () => client.close() };
}

/** What a tool call answers. */
export type ToolResult = { isError?: boolean; content: { type: string; text?: string }[] };

/** Calls coder_report_task. */
export async function report(session: McpSession, args: { summary: string; link: string; state: string }): Promise<ToolResult> {
  return (await session.client.callTool({ name: "coder_report_task", arguments: args })) as ToolResult;
}

