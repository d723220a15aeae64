import type { IncomingMessage, ServerResponse } from "node:http";

/** Largest request body agentd reads; past it the answer is 413. */
export const MAX_BODY_BYTES = 1 << 20;

/**
 * Encodes a value as Go's encoding/json does for the same shape: `<`, `>`,
 * `&`, U+2028 and U+2029 are escaped, and a newline ends the value.
 */
export function goJson(value: unknown): string {
  return (
    JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`) +
    "\n"
  );
}

/** Writes a JSON reply the way Coder's httpapi.Write does. */
export function writeJson(res: ServerResponse, status: number, value: unknown): void {
  const body = goJson(value);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** Coder's error envelope (codersdk.Response): `detail` is omitted when empty. */
export function writeError(res: ServerResponse, status: number, message: string, detail?: string): void {
  writeJson(res, status, detail ? { message, detail } : { message });
}

/** A body that could not be read: too large, or the client went away. */
export class BodyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads the whole request body, refusing more than `limit` bytes with a 413. */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new BodyError(413, `Request body must be at most ${limit} bytes.`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new BodyError(413, `Request body must be at most ${limit} bytes.`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
