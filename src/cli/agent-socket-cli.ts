import { Code, ConnectError } from "@connectrpc/connect";
import { Command, Option } from "commander";
import { isDialError } from "../agentsocket/client.js";
import { defaultAgentSocket } from "../default-paths.js";
import { errorText, UsageError } from "../errors.js";

/** Each call to the agent socket gives up after this long, so a wedged daemon cannot hang a script. */
export const CALL_TIMEOUT_MS = 30_000;

/** Exit code of a command whose call to the agent socket failed. */
export const CALL_FAILED_EXIT_CODE = 1;

/** Output formats every agent socket command accepts. */
export type OutputFormat = "human" | "json";

/** Options every agent socket command receives. */
export interface SocketOptions {
  socketPath: string;
  output: OutputFormat;
}

/** `--socket-path`: where the agent socket listens (Coder's flag and env var). */
export function socketPathOption(): Option {
  return new Option("--socket-path <path>", "unix socket of the agent socket service")
    .env("CODER_AGENT_SOCKET_PATH")
    .default(defaultAgentSocket());
}

/** `--output`: human-readable text (default) or JSON. */
export function outputOption(): Option {
  return new Option("-o, --output <format>", "output format").choices(["human", "json"]).default("human");
}

/**
 * A top-level command whose subcommands (created with `.command()`) inherit
 * agentd's CLI behaviour: errors become exceptions the entry point maps to
 * exit codes, printed as one line.
 */
export function commandGroup(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str.split("\n")[0] + "\n") });
}

/** Adds `--socket-path` and `--output` to `cmd`. */
export function withSocketOptions(cmd: Command): Command {
  return cmd.addOption(socketPathOption()).addOption(outputOption());
}

/** One line explaining why a call to the agent socket at `socketPath` failed. */
export function callErrorText(err: unknown, socketPath: string): string {
  if (isDialError(err)) {
    const cause = (err as ConnectError).cause;
    return `cannot reach the agent socket at ${socketPath} (is agentd serve running?): ${errorText(cause)}`;
  }
  if (err instanceof ConnectError) {
    return err.code === Code.DeadlineExceeded ? `${err.rawMessage} (agent socket at ${socketPath})` : err.rawMessage;
  }
  return errorText(err);
}

/**
 * Runs a command body against the socket: a usage mistake propagates (exit 2),
 * any other failure prints one `agentd: ...` line and sets exit code 1.
 */
export async function runCall(socketPath: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (err instanceof UsageError) throw err;
    process.stderr.write(`agentd: ${callErrorText(err, socketPath)}\n`);
    process.exitCode = CALL_FAILED_EXIT_CODE;
  }
}

/** Prints `value` as one JSON document. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** Prints rows as left-aligned columns under upper-case headers. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  process.stdout.write([line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join("\n") + "\n");
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go-style duration (`500ms`, `30s`, `5m`, `1h30m`; `0` means none) into milliseconds. */
export function parseDuration(value: string, flag: string): number {
  if (value === "0") return 0;
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== value) {
    throw new UsageError(flag, `"${value}" is not a duration (for example 30s, 5m, 1h30m)`);
  }
  return parts.reduce((total, p) => total + Number(p[1]) * DURATION_UNITS_MS[p[2]!]!, 0);
}
