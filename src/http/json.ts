import type { IncomingMessage, ServerResponse } from "node:http";

/** Largest request body agentd reads; past it the answer is 413. */
export const MAX_BODY_BYTES = 1 << 20;

/** Characters Go's encoding/json escapes that JSON.stringify leaves as they are. */
const GO_ESCAPED = /[<>&\u2028\u2029]/g;
/** Ends every JSON reply, as Go's json.Encoder does. */
const NEWLINE = 0x0a;

/** JSON.stringify's text with Go's extra escapes; scans for them before paying for a replace. */
function goEscape(json: string): string {
  const clean =
    json.indexOf("<") === -1 &&
    json.indexOf(">") === -1 &&
    json.indexOf("&") === -1 &&
    json.indexOf("\u2028") === -1 &&
    json.indexOf("\u2029") === -1;
  if (clean) return json;
  return json.replace(GO_ESCAPED, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * Encodes a value as Go's encoding/json does for the same shape: `<`, `>`,
 * `&`, U+2028 and U+2029 are escaped, and a newline ends the value.
 */
export function goJson(value: unknown): string {
  return goEscape(JSON.stringify(value)) + "\n";
}

/** goJson as UTF-8 bytes, encoded once (no concatenated string to flatten, no second encode on the socket). */
function goJsonBytes(value: unknown): Buffer {
  const json = goEscape(JSON.stringify(value));
  const length = Buffer.byteLength(json);
  const body = Buffer.allocUnsafe(length + 1);
  body.write(json, 0, length, "utf8");
  body[length] = NEWLINE;
  return body;
}

/** Writes a JSON reply the way Coder's httpapi.Write does. */
export function writeJson(res: ServerResponse, status: number, value: unknown): void {
  writeJsonBytes(res, status, goJsonBytes(value));
}

/** Writes an already encoded JSON reply (goJson's bytes) with writeJson's headers. */
export function writeJsonBytes(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": body.length,
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
