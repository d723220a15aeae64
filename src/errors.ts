/**
 * A mistake in how agentd was invoked (a bad flag value, a port in use, an
 * unwritable directory). The CLI prints it as one line naming the flag and
 * exits 2, without a stack trace.
 */
export class UsageError extends Error {
  constructor(
    /** The flag the problem is about, e.g. `--http-addr`. */
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`);
    this.name = "UsageError";
  }
}

/** Exit code for usage errors, as the CLI contract says. */
export const USAGE_EXIT_CODE = 2;

/** Best-effort short text for any thrown value. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The `code` of a Node system error (`EADDRINUSE`, `EACCES`, …), if any. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}
