import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  DirectoryEntrySchema,
  EditFilesResponseSchema,
  FileDiffSchema,
  FilesService,
  ListDirectoryResponseSchema,
  ReadFileLinesResponseSchema,
  ReadFileResponseSchema,
  ResolvePathResponseSchema,
  WriteFileResponseSchema,
  type ReadFileResponse,
} from "../../gen/agentd/files/v1/files_pb.js";
import { callChatScope } from "../http/chat.js";
import { FileError, goQuote } from "./errors.js";
import { sha256, type Files } from "./files.js";
import type { FilesMetrics } from "./metrics.js";
import { contentText } from "./lines-json.js";
import { DEFAULT_LINE_LIMITS } from "./read-lines.js";
import type { FilesRoute } from "./routes.js";

/** A non-negative request number, else InvalidArgument naming the field. */
function nonNegative(value: bigint, field: string): number {
  if (value < 0n) throw new ConnectError(`${field} must not be negative`, Code.InvalidArgument);
  return Number(value);
}

/** 0 in a limit field means Coder's default. */
function orDefault(value: bigint, field: string, def: number): number {
  const n = nonNegative(value, field);
  return n === 0 ? def : n;
}

/**
 * FilesService over the same Files the JSON routes use. Failures carry the
 * Connect code of Coder's HTTP status; a failed precondition also carries
 * the current sha256 in the `etag` trailer-style metadata.
 */
export function filesService(files: Files, metrics: FilesMetrics): ServiceImpl<typeof FilesService> {
  async function counted<T>(route: FilesRoute, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      metrics.requests.inc({ route, code: "200" });
      return result;
    } catch (err) {
      if (!(err instanceof FileError)) {
        metrics.requests.inc({ route, code: err instanceof ConnectError && err.code === Code.InvalidArgument ? "400" : "500" });
        throw err;
      }
      metrics.requests.inc({ route, code: String(err.status) });
      const meta = err.currentSha256 ? { etag: `"${err.currentSha256}"` } : undefined;
      throw new ConnectError(err.message, err.code, meta);
    }
  }

  return {
    async *readFile(req): AsyncGenerator<ReadFileResponse> {
      const range = await counted("read-file", () =>
        files.readFile(req.path, nonNegative(req.offset, "offset"), nonNegative(req.limit, "limit")),
      );
      let first = true;
      const head = () => ({ length: BigInt(range.length), contentType: range.contentType, sha256: range.sha256 ?? "" });
      const stream = range.reader.stream();
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          yield create(ReadFileResponseSchema, { data: chunk, ...(first ? head() : {}) });
          first = false;
        }
        if (first) yield create(ReadFileResponseSchema, head());
      } finally {
        stream.destroy();
      }
    },

    readFileLines: (req) =>
      counted("read-file-lines", async () => {
        const d = DEFAULT_LINE_LIMITS;
        const { response, sha256 } = await files.readFileLines(req.path, nonNegative(req.offset, "offset"), nonNegative(req.limit, "limit"), {
          maxFileSize: orDefault(req.maxFileSize, "max_file_size", d.maxFileSize),
          maxLineBytes: orDefault(req.maxLineBytes, "max_line_bytes", d.maxLineBytes),
          maxResponseLines: orDefault(req.maxResponseLines, "max_response_lines", d.maxResponseLines),
          maxResponseBytes: orDefault(req.maxResponseBytes, "max_response_bytes", d.maxResponseBytes),
        });
        return create(ReadFileLinesResponseSchema, {
          success: response.success,
          fileSize: BigInt(response.file_size ?? 0),
          totalLines: BigInt(response.total_lines ?? 0),
          linesRead: BigInt(response.lines_read ?? 0),
          content: contentText(response),
          error: response.error ?? "",
          sha256: response.success ? (sha256 ?? "") : "",
        });
      }),

    writeFile: (req, ctx) =>
      counted("write-file", async () => {
        const content = Buffer.from(req.content.buffer, req.content.byteOffset, req.content.byteLength);
        const ifMatch = req.ifMatchSha256 === "" ? undefined : req.ifMatchSha256;
        await files.writeFile(req.path, content, ifMatch, callChatScope(req.chatId, req.ancestorChatIds, ctx));
        return create(WriteFileResponseSchema, {
          message: `Successfully wrote to ${goQuote(req.path)}`,
          sha256: sha256(content),
        });
      }),

    editFiles: (req, ctx) =>
      counted("edit-files", async () => {
        const result = await files.editFiles(
          {
            files: req.files.map((f) => ({
              path: f.path,
              edits: f.edits.map((e) => ({ search: e.oldText, replace: e.newText, replaceAll: e.replaceAll })),
              expectedSha256: f.expectedSha256,
            })),
            includeDiff: req.includeDiff,
          },
          callChatScope(req.chatId, req.ancestorChatIds, ctx),
        );
        return create(EditFilesResponseSchema, { files: (result.files ?? []).map((d) => create(FileDiffSchema, d)) });
      }),

    listDirectory: (req) =>
      counted("list-directory", async () => {
        const listing = await files.listDirectory(req.path, { path: req.segments, relativity: req.relativity });
        return create(ListDirectoryResponseSchema, {
          absolutePath: listing.absolute_path,
          absolutePathString: listing.absolute_path_string,
          contents: listing.contents.map((e) =>
            create(DirectoryEntrySchema, { name: e.name, absolutePathString: e.absolute_path_string, isDir: e.is_dir }),
          ),
        });
      }),

    resolvePath: (req) =>
      counted("resolve-path", async () => create(ResolvePathResponseSchema, { resolvedPath: await files.resolvePath(req.path) })),
  };
}
