import { createRequire } from "node:module";
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat } from "./log-options.js";
import { REDACTED } from "./secrets.js";

export type { Logger };
export { LOG_FORMATS, LOG_LEVELS, type LogFormat };


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


/** `auto` decided for a stream: pretty only when a person is watching it. */
export function effectiveLogFormat(format: LogFormat, stream: { isTTY?: boolean }): "json" | "pretty" {
  if (format !== "auto") return format;
  return stream.isTTY ? "pretty" : "json";
}

/** pino-pretty writing to `fd` synchronously; loaded only when asked for, so JSON logging never pays for it. */
function prettyStream(fd: number): DestinationStream {
  const require = createRequire(import.meta.url);
  const pretty = require("pino-pretty") as (opts: Record<string, unknown>) => DestinationStream;
  return pretty({
    destination: fd,
    sync: true,
    singleLine: true,
    translateTime: "SYS:HH:MM:ss.l",
    messageFormat: "{if component}{component}: {end}{msg}",
    ignore: "pid,hostname,service,component",
  });
}

/**
 * The root logger: JSON lines on stdout (pino's default) or, with `pretty`,
 * one coloured line per event; one child per component
 * (`log.child({ component: "boundary" })`). Credentials are redacted either way.
 */
export function createLogger(
  level: LevelWithSilent = "info",
  destination?: NodeJS.WritableStream,
  format: LogFormat = "json",
): Logger {
  const options = { base: { service: "agentd" }, level, redact: { paths: REDACT_PATHS, censor: REDACTED } };
  if (!destination && effectiveLogFormat(format, process.stdout) === "pretty") return pino(options, prettyStream(1));
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
