import { Code } from "@connectrpc/connect";
import { errnoCode } from "../errors.js";
import { goQuote } from "../process/errors.js";

/** The Connect code for each HTTP status a files operation answers with. */
const CONNECT_CODES: Record<number, Code> = {
  400: Code.InvalidArgument,
  403: Code.PermissionDenied,
  404: Code.NotFound,
  412: Code.FailedPrecondition,
  413: Code.ResourceExhausted,
  500: Code.Internal,
};

/**
 * An expected failure of a files operation: `status` and `message` are what
 * Coder's JSON envelope carries for the same case. `currentSha256` is set on
 * a failed precondition (412).
 */
export class FileError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly currentSha256?: string,
  ) {
    super(message);
    this.name = "FileError";
  }

  /** The Connect code of this failure. */
  get code(): Code {
    return CONNECT_CODES[this.status] ?? Code.Internal;
  }
}

/** Go's syscall.Errno text for the errno codes file operations meet. */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "file name too long",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EEXIST: "file exists",
  EXDEV: "invalid cross-device link",
  EMFILE: "too many open files",
  ENFILE: "too many open files in system",
  EIO: "input/output error",
  EBUSY: "device or resource busy",
  EINVAL: "invalid argument",
  EFBIG: "file too large",
  ETXTBSY: "text file busy",
};

/**
 * A Go `*PathError` rendered as text (`open /x: no such file or
 * directory`), keeping the errno so callers can pick a status.
 */
export class GoPathError extends Error {
  constructor(
    readonly op: string,
    readonly path: string,
    readonly errno: string | undefined,
    text: string,
  ) {
    super(`${op} ${path}: ${text}`);
    this.name = "GoPathError";
  }
}

/** Wraps a Node file-system error as Go's PathError for `op` on `path`. */
export function pathError(op: string, path: string, err: unknown): GoPathError {
  const code = errnoCode(err);
  const text = (code && ERRNO_TEXT[code]) ?? (err instanceof Error ? err.message : String(err));
  return new GoPathError(op, path, code, text);
}

/** The errno behind an error, looking through GoPathError. */
export function errnoOf(err: unknown): string | undefined {
  return err instanceof GoPathError ? err.errno : errnoCode(err);
}

/** Coder's mapping of an open/stat failure: not found 404, permission 403, else 500. */
export function statusOf(err: unknown): number {
  const code = errnoOf(err);
  if (code === "ENOENT") return 404;
  if (code === "EACCES" || code === "EPERM") return 403;
  return 500;
}

/** `file path must be absolute: "<p>"` (Coder's text for a relative path). */
export function notAbsolute(path: string): FileError {
  return new FileError(400, `file path must be absolute: ${goQuote(path)}`);
}

/** A path with a NUL byte can name no file; the OS call would fail with EINVAL. */
export function nulInPath(path: string): FileError {
  return new FileError(400, `file path must not contain NUL bytes: ${goQuote(path)}`);
}

export { goQuote };
