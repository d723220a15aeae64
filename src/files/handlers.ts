import type { IncomingMessage, ServerResponse } from "node:http";
import type { ChatScope } from "../http/chat.js";
import { BodyError, MAX_BODY_BYTES, readBody, writeError, writeJson, writeJsonBytes } from "../http/json.js";
import type { Logger } from "../log.js";
import { GoJsonError } from "../process/go-json.js";
import { SourceError, tooLarge } from "./atomic-write.js";
import { FileError, goQuote } from "./errors.js";
import type { Files, Precondition } from "./files.js";
import { linesResponseJson } from "./lines-json.js";
import { INVALID_QUERY_MESSAGE, QueryParser } from "./query.js";
import { DEFAULT_LINE_LIMITS } from "./read-lines.js";
import { decodeEditFilesRequest, decodeListDirectoryRequest } from "./requests.js";
import type { FilesRoute } from "./routes.js";

/** Serves one files route: `scope` is the request's chat. */
export type FilesHandler = (req: IncomingMessage, res: ServerResponse, url: URL, scope: ChatScope) => Promise<void>;

/** Query validation failed: answered 400 with Coder's `validations`. */
class QueryError extends Error {
  constructor(readonly validations: { field: string; detail: string }[]) {
    super(INVALID_QUERY_MESSAGE);
  }
}

/** Runs the parser's readers, then throws QueryError if anything was wrong. */
function parseQuery<T>(url: URL, required: string[], read: (q: QueryParser) => T): T {
  const parser = new QueryParser(url.searchParams, required);
  const value = read(parser);
  const errors = parser.finish();
  if (errors.length > 0) throw new QueryError(errors);
  return value;
}

/** `"<hex>"` (or `*`) from If-Match; a malformed header is a 400. */
function ifMatchOf(req: IncomingMessage): Precondition {
  const raw = req.headers["if-match"]?.trim();
  if (raw === undefined || raw === "") return undefined;
  if (raw === "*") return "*";
  const m = /^"([0-9a-fA-F]{64})"$/.exec(raw);
  if (!m) throw new FileError(400, 'If-Match must be "*" or a quoted sha256 hex digest, e.g. "2c26b4…" (64 hex digits in quotes)');
  return m[1]!.toLowerCase();
}

/** Reads a JSON body and decodes it as Go would; a decode failure is Coder's 400. */
async function decodeJson<T>(req: IncomingMessage, limit: number, decode: (body: Buffer) => T): Promise<T> {
  const body = await readBody(req, limit);
  try {
    return decode(body);
  } catch (err) {
    if (err instanceof GoJsonError) throw new BodyJsonError(err.message);
    throw err;
  }
}

/** httpapi.Read's answer to a body that does not decode. */
class BodyJsonError extends Error {}

function writeFailure(res: ServerResponse, err: unknown): boolean {
  if (err instanceof QueryError) {
    writeJson(res, 400, { message: err.message, validations: err.validations });
  } else if (err instanceof BodyJsonError) {
    writeError(res, 400, "Request body must be valid JSON.", err.message);
  } else if (err instanceof SourceError) {
    writeError(res, 400, "Failed to read request body.", err.cause instanceof Error ? err.cause.message : undefined);
  } else if (err instanceof FileError && err.currentSha256 !== undefined) {
    if (err.currentSha256 !== "") res.setHeader("ETag", `"${err.currentSha256}"`);
    writeJson(res, err.status, { message: err.message, current_sha256: err.currentSha256 });
  } else if (err instanceof FileError || err instanceof BodyError) {
    writeError(res, err.status, err.message);
  } else {
    return false;
  }
  return true;
}

/**
 * The handlers of Coder's files routes (`/api/v0/read-file`, …): Coder's
 * query validation, JSON shapes and error envelope, backed by `files`.
 */
export function filesHandlers(files: Files, log: Logger): Record<FilesRoute, FilesHandler> {
  const handled =
    (fn: FilesHandler): FilesHandler =>
    async (req, res, url, scope) => {
      try {
        await fn(req, res, url, scope);
      } catch (err) {
        if (res.headersSent) throw err;
        if (!req.readableEnded) {
          // The rest of the body is not read: the connection cannot carry another request.
          res.shouldKeepAlive = false;
          req.resume();
        }
        if (!writeFailure(res, err)) throw err;
      }
    };

  return {
    "read-file": handled(async (_req, res, url) => {
      const q = parseQuery(url, ["path"], (p) => ({
        path: p.string("path"),
        offset: p.positiveInt64("offset", 0),
        limit: p.positiveInt64("limit", 0),
      }));
      const range = await files.readFile(q.path, q.offset, q.limit);
      res.writeHead(200, {
        "Content-Type": range.contentType,
        "Content-Length": range.length,
        ...(range.sha256 ? { ETag: `"${range.sha256}"` } : {}),
      });
      try {
        await range.reader.writeTo(res);
        res.end();
      } catch (err) {
        log.debug({ err, path: q.path }, "read-file stream ended early");
        res.destroy();
      }
    }),

    "read-file-lines": handled(async (_req, res, url) => {
      const d = DEFAULT_LINE_LIMITS;
      const q = parseQuery(url, ["path"], (p) => ({
        path: p.string("path"),
        offset: p.positiveInt64("offset", 1),
        limit: p.positiveInt64("limit", 0),
        limits: {
          maxFileSize: p.positiveInt64("max_file_size", d.maxFileSize),
          maxLineBytes: p.positiveInt64("max_line_bytes", d.maxLineBytes),
          maxResponseLines: p.positiveInt64("max_response_lines", d.maxResponseLines),
          maxResponseBytes: p.positiveInt64("max_response_bytes", d.maxResponseBytes),
        },
      }));
      const { response, sha256 } = await files.readFileLines(q.path, q.offset, q.limit, q.limits);
      if (sha256) res.setHeader("ETag", `"${sha256}"`);
      writeJsonBytes(res, 200, linesResponseJson(response));
    }),

    "write-file": handled(async (req, res, url, scope) => {
      const q = parseQuery(url, ["path"], (p) => ({ path: p.string("path") }));
      const ifMatch = ifMatchOf(req);
      const declared = Number(req.headers["content-length"]);
      if (Number.isFinite(declared) && declared > files.maxWriteBytes) throw tooLarge(files.maxWriteBytes);
      await files.writeFile(q.path, req, ifMatch, scope);
      writeJson(res, 200, { message: `Successfully wrote to ${goQuote(q.path)}` });
    }),

    "edit-files": handled(async (req, res, _url, scope) => {
      const body = await decodeJson(req, files.maxWriteBytes, decodeEditFilesRequest);
      writeJson(res, 200, await files.editFiles(body, scope));
    }),

    "list-directory": handled(async (req, res, url) => {
      const q = parseQuery(url, [], (p) => ({ path: p.string("path") }));
      const body = await decodeJson(req, MAX_BODY_BYTES, decodeListDirectoryRequest);
      writeJson(res, 200, await files.listDirectory(q.path, body));
    }),

    "resolve-path": handled(async (_req, res, url) => {
      const q = parseQuery(url, ["path"], (p) => ({ path: p.string("path") }));
      writeJson(res, 200, { resolved_path: await files.resolvePath(q.path) });
    }),
  };
}
