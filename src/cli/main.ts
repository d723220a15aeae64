import { Command, CommanderError, Help, type Option } from "commander";
import { USAGE_EXIT_CODE, UsageError } from "../errors.js";
import { versionLine } from "../version.js";
import { COMMANDS } from "./commands.js";

/** Commander's error text as one line: its "(Did you mean …?)" hint joins the message. */
function oneLine(str: string, write: (s: string) => void): void {
  write(str.trim().replace(/\s*\n\s*/g, " ") + "\n");
}

/** Help that marks mandatory options `(required)`. */
const HELP: Partial<Help> = {
  optionDescription(option: Option): string {
    const text = Help.prototype.optionDescription.call(this, option);
    return option.mandatory ? `${text} (required)` : text;
  },
};

/** Gives `cmd` and every command under it agentd's error output, exit handling and help. */
function configureTree(cmd: Command): void {
  cmd
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: oneLine })
    .configureHelp(HELP);
  cmd.commands.forEach(configureTree);
}

function root(): Command {
  return new Command("agentd")
    .description("Coder workspace agent extension: process API, git watch, boundary log proxy, agent socket")
    .version(versionLine(), "-V, --version", "print the version and the git commit of this build");
}

/**
 * The `agentd` program for `argv`: the named subcommand loaded in full, or,
 * when none is named (help, version, a mistyped name), every subcommand by
 * name and description only.
 */
export async function program(argv: string[]): Promise<Command> {
  const [first, second] = argv.slice(2);
  const named = COMMANDS.find((c) => c.name === (first === "help" ? second : first));
  const program = root();
  if (named) {
    // The daemon's modules load under start-up tuning (loaded only here: other
    // commands skip node:v8's load time); `serve` releases it once started.
    if (named.name === "serve") (await import("../startup-tuning.js")).holdStartupTuning();
    const cmd = await named.load();
    program.addCommand(cmd.description(named.description));
  } else {
    for (const c of COMMANDS) program.command(c.name).description(c.description);
  }
  configureTree(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await (await program(argv)).parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed help, the version or the one-line error.
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
