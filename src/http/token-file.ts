import fs from "node:fs";
import { UsageError } from "../errors.js";

/** The flag naming the HTTP API's bearer token file. */
export const HTTP_TOKEN_FILE_FLAG = "--http-token-file";

/** The environment variable for `--http-token-file`. */
export const HTTP_TOKEN_FILE_ENV = "AGENTD_HTTP_TOKEN_FILE";

/**
 * The HTTP API's bearer token held in `file` (surrounding whitespace
 * trimmed). `agentd serve` requires it of clients and agentd's own commands
 * that call the API send it. A UsageError naming --http-token-file when the
 * file cannot be read or is empty.
 */
export function readHttpTokenFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(HTTP_TOKEN_FILE_FLAG, `cannot read "${file}"${code ? ` (${code})` : ""}`);
  }
  const token = text.trim();
  if (token === "") throw new UsageError(HTTP_TOKEN_FILE_FLAG, `"${file}" is empty`);
  return token;
}

/** The `Authorization` header for `token`, or no header without one. */
export function bearerHeader(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}
