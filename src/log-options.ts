import type { LevelWithSilent } from "pino";

// The values of the logging flags, apart from the logger itself, so the CLIs
// that only parse options never load pino.

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS: readonly LevelWithSilent[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** Values of `--log-format`: `auto` is `pretty` on a terminal and `json` otherwise. */
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
