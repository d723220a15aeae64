import { Code } from "@connectrpc/connect";
import { goQuote } from "../go-quote.js";

export { goQuote };

/** Every way a process operation can fail, with its HTTP status and Connect code. */
export const PROCESS_ERRORS = {
  /** Bad request content: missing command, missing or unsupported signal. */
  invalid: { status: 400, code: Code.InvalidArgument },
  /** Unknown id, or an id another chat owns. */
  notFound: { status: 404, code: Code.NotFound },
  /** Signal for a process that already exited. */
  notRunning: { status: 409, code: Code.FailedPrecondition },
  /** A client token reused with a different command or workdir. */
  tokenConflict: { status: 409, code: Code.AlreadyExists },
  /** The running-process limit (`--max-processes`) is reached. */
  limit: { status: 429, code: Code.ResourceExhausted },
  /** The spawn failed (missing workdir, no `sh`, manager closed). */
  startFailed: { status: 500, code: Code.Internal },
  /** The signal could not be delivered. */
  signalFailed: { status: 500, code: Code.Internal },
} as const;

/** One of the failure kinds in PROCESS_ERRORS. */
export type ProcessErrorKind = keyof typeof PROCESS_ERRORS;

/**
 * An expected failure of a process operation. `message` and `detail` are
 * exactly what Coder's JSON envelope carries for the same case.
 */
export class ProcessError extends Error {
  constructor(
    readonly kind: ProcessErrorKind,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = "ProcessError";
  }

  get status(): number {
    return PROCESS_ERRORS[this.kind].status;
  }

  get code(): Code {
    return PROCESS_ERRORS[this.kind].code;
  }
}

/** `Process "<id>" not found.` */
export function notFound(id: string): ProcessError {
  return new ProcessError("notFound", `Process ${goQuote(id)} not found.`);
}
