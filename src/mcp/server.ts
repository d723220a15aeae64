import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { APP_STATUS_STATES } from "../cli/app-status.js";
import { MAX_APP_STATUS_MESSAGE_BYTES } from "../coderd/embedded.js";
import type { TaskReporter } from "./task-reporter.js";

/** The tool name Coder's MCP server exposes for task reporting (codersdk/toolsdk). */
export const REPORT_TASK_TOOL = "coder_report_task";
/** What the tool answers on success: Coder's codersdk.Response JSON, with the newline Go's json.Encoder ends it with. */
export const REPORT_THANKS_TEXT = JSON.stringify({ message: "Thanks for reporting!" }) + "\n";

const REPORT_TASK_DESCRIPTION = `Report progress on your work.

The user observes your work through a Task UI. To keep them updated
on your progress, or if you need help - use this tool.

Good Tasks
- "Cloning the repository <repository-url>"
- "Working on <feature-name>"
- "Figuring our why <issue> is happening"

Bad Tasks
- "I'm working on it"
- "I'm trying to fix it"
- "I'm trying to implement <feature-name>"

Use the "state" field to indicate your progress. Periodically report
progress with state "working" to keep the user updated. It is not possible to send too many updates!

ONLY report a "complete", "idle", or "failure" state if you have FULLY completed the task.
`;

/** An MCP server with `coder_report_task`, reporting through `reporter`. */
export function createMcpServer(reporter: TaskReporter, version: string): McpServer {
  const server = new McpServer({ name: "agentd", version });
  server.registerTool(
    REPORT_TASK_TOOL,
    {
      description: REPORT_TASK_DESCRIPTION,
      inputSchema: {
        summary: z
          .string()
          .describe(
            `A concise summary of your current progress on the task. This must be less than ${MAX_APP_STATUS_MESSAGE_BYTES} characters in length and must not include newlines or other control characters.`,
          ),
        link: z.string().describe("A link to a relevant resource, such as a PR or issue."),
        state: z
          .enum(APP_STATUS_STATES)
          .describe(
            "The state of your task. This can be one of the following: working, idle, complete, or failure. Select the state that best represents your current progress.",
          ),
      },
    },
    async (args) => {
      const outcome = await reporter.report(args);
      if (!outcome.ok) return { isError: true, content: [{ type: "text", text: outcome.error }] };
      return { content: [{ type: "text", text: REPORT_THANKS_TEXT }] };
    },
  );
  return server;
}
