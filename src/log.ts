import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS: readonly LevelWithSilent[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/**
 * The root logger: JSON lines on stdout (pino's default), one child per
 * component (`log.child({ component: "boundary" })`).
 */
export function createLogger(level: LevelWithSilent = "info", destination?: NodeJS.WritableStream): Logger {
  return pino({ base: { service: "agentd" }, level }, destination ?? pino.destination({ dest: 1, sync: false }));
}
