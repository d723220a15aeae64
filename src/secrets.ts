/**
 * Environment variables that hold a credential or point at one. agentd reads
 * them at start-up, then drops them from its own environment, and no child
 * process ever inherits them.
 */
export const SECRET_ENV_VARS: readonly string[] = ["CODER_AGENT_TOKEN", "CODER_AGENT_TOKEN_FILE", "AGENTD_HTTP_TOKEN_FILE"];

/** Shown in place of a token wherever it would otherwise appear. */
export const REDACTED = "[redacted]";

/** Shortest token value scrubbed by value: shorter ones would match innocent variables. */
const MIN_SCRUBBED_SECRET_LENGTH = 8;

/** Removes the credential variables from `env` (agentd's own `process.env` by default). */
export function dropSecretEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of SECRET_ENV_VARS) delete env[name];
}

/**
 * A copy of `env` without the credential variables and without any variable
 * whose value contains one of `secrets` (a token copied under another name).
 */
export function withoutSecrets(env: Record<string, string>, secrets: readonly string[]): Record<string, string> {
  const values = secrets.filter((s) => s.length >= MIN_SCRUBBED_SECRET_LENGTH);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (SECRET_ENV_VARS.includes(name) || values.some((s) => value.includes(s))) continue;
    out[name] = value;
  }
  return out;
}

/**
 * Rewrites the process title so `/proc/PID/cmdline` (readable by every local
 * user) shows `--token [redacted]` instead of the token. Linux lets a process
 * overwrite its argument area; elsewhere this may change nothing. Returns
 * true when `--token` was given on the command line.
 */
export function hideTokenArgument(argv: readonly string[] = process.argv): boolean {
  let found = false;
  const shown = argv.map((arg, i) => {
    if (argv[i - 1] === "--token") {
      found = true;
      return REDACTED;
    }
    if (arg.startsWith("--token=")) {
      found = true;
      return `--token=${REDACTED}`;
    }
    return arg;
  });
  // Node's own flags (the launcher's among them) stay in view after the node binary.
  if (found) process.title = [shown[0], ...process.execArgv, ...shown.slice(1)].join(" ");
  return found;
}
