import { pino, type Logger, type LevelWithSilent } from "pino";
import { REDACTED } from "./secrets.js";

export type { Logger };

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS: readonly LevelWithSilent[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/**
 * Log fields that may hold a credential: token fields and the
 * Authorization and Coder-Session-Token headers, at the top level and one or
 * two levels down (`{ req: { headers } }`); pino replaces them with REDACTED.
 */
const REDACT_PATHS = [
  "token",
  "*.token",
  "authorization",
  "headers.authorization",
  'headers["coder-session-token"]',
  'headers["Coder-Session-Token"]',
  "*.headers.authorization",
  '*.headers["coder-session-token"]',
  '*.headers["Coder-Session-Token"]',
];

/**
 * The root logger: JSON lines on stdout (pino's default), one child per
 * component (`log.child({ component: "boundary" })`).
 */
export function createLogger(level: LevelWithSilent = "info", destination?: NodeJS.WritableStream): Logger {
  return pino(
    { base: { service: "agentd" }, level, redact: { paths: REDACT_PATHS, censor: REDACTED } },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
