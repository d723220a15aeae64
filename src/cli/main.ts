import { Command, CommanderError } from "commander";
import { USAGE_EXIT_CODE, UsageError } from "../errors.js";
import { appStatusCommand } from "./app-status.js";
import { coderdPeerCommand } from "./coderd-peer.js";
import { mcpCommand } from "./mcp.js";
import { serveCommand } from "./serve.js";
import { subagentCommand } from "./subagent.js";
import { syncCommand } from "./sync.js";

/** Builds the `agentd` program with every subcommand. */
export function program(): Command {
  const root = new Command("agentd")
    .description("Coder workspace agent extension: process API, git watch, boundary log proxy, agent socket")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str.split("\n")[0] + "\n") });
  root.addCommand(serveCommand());
  root.addCommand(syncCommand());
  root.addCommand(appStatusCommand());
  root.addCommand(subagentCommand());
  root.addCommand(mcpCommand());
  root.addCommand(coderdPeerCommand());
  root.commands.forEach((c) => c.exitOverride());
  root.exitOverride();
  return root;
}

async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed help or the one-line error.
      process.exit(err.exitCode === 0 ? 0 : USAGE_EXIT_CODE);
    }
    if (err instanceof UsageError) {
      process.stderr.write(`agentd: ${err.message}\n`);
      process.exit(USAGE_EXIT_CODE);
    }
    throw err;
  }
}

await main(process.argv);
