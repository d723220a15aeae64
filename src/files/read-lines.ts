
/** workspacesdk.ReadFileLinesLimits and their defaults (DefaultMaxFileSize, …). */
export interface LineLimits {
  maxFileSize: number;
  maxLineBytes: number;
  maxResponseLines: number;
  maxResponseBytes: number;
}

/** Coder's defaults for read-file-lines (workspacesdk.DefaultMax*). */
export const DEFAULT_LINE_LIMITS: LineLimits = {
  maxFileSize: 1 << 20,
  maxLineBytes: 1024,
  maxResponseLines: 2000,
  maxResponseBytes: 32768,
};

/** The content of an empty file. */
const EMPTY = Buffer.alloc(0);
/** Marks a line cut at max_line_bytes. */
const TRUNCATED_SUFFIX = Buffer.from("... [truncated]");
const NEWLINE = 0x0a;
/** A joiner, the longest line number (int64) and a tab. */
const MAX_LINE_OVERHEAD = 1 + 20 + 1;

/**
 * Coder's ReadFileLinesResponse, keys in Go's order; every key but
 * `success` is omitted when zero (omitempty).
 */
export interface LinesResponse {
  success: boolean;
  file_size?: number;
  total_lines?: number;
  lines_read?: number;
  /** The numbered lines as raw file bytes; invalid UTF-8 becomes U+FFFD only when encoded (linesResponseJson, contentText). */
  content?: Buffer;
  error?: string;
}

/** A failed read: only `success: false` and `error`. */
export function linesError(error: string): LinesResponse {
  return { success: false, error };
}

function omitZero(r: Required<LinesResponse>): LinesResponse {
  const out: LinesResponse = { success: r.success };
  if (r.file_size) out.file_size = r.file_size;
  if (r.total_lines) out.total_lines = r.total_lines;
  if (r.lines_read) out.lines_read = r.lines_read;
  if (r.content.length > 0) out.content = r.content;
  if (r.error) out.error = r.error;
  return out;
}

/** Lines shorter than this are copied byte by byte: cheaper than a native copy call per line. */
const SHORT_COPY_BYTES = 128;

/** Writes an ASCII string at `at`; returns the end offset (no native call per short string). */
function writeLatin1(out: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}

/** Copies `data[from, to)` to `out` at `at`; returns the end offset. */
function copyBytes(data: Buffer, from: number, to: number, out: Buffer, at: number): number {
  if (to - from >= SHORT_COPY_BYTES) return at + data.copy(out, at, from, to);
  for (let i = from; i < to; i++) out[at++] = data[i]!;
  return at;
}

/**
 * Numbers the lines of `data` as Coder's readFileLines does: split on "\n"
 * (a trailing newline makes a last empty line), 1-based `offset`, `limit`
 * lines (0: max_response_lines), each line cut at max_line_bytes bytes, and
 * the whole answer refused (not shortened) past max_response_bytes or
 * max_response_lines. Works on bytes; invalid UTF-8 becomes U+FFFD per byte
 * only when the content is encoded, as Go's JSON encoder does.
 */
export function numberLines(data: Buffer, fileSize: number, offset: number, limit: number, limits: LineLimits): LinesResponse {
  if (data.length === 0) return omitZero({ success: true, file_size: fileSize, total_lines: 0, lines_read: 0, content: EMPTY, error: "" });
  const starts = [0];
  for (let i = data.indexOf(NEWLINE); i !== -1; i = data.indexOf(NEWLINE, i + 1)) starts.push(i + 1);
  const totalLines = starts.length;
  const first = Math.max(offset, 1);
  if (first > totalLines) return linesError(`offset ${first} is beyond the file length of ${totalLines} lines`);
  const count = limit <= 0 ? limits.maxResponseLines : limit;
  const end = Math.min(first - 1 + count, totalLines);
  const lineEnd = (i: number) => (i + 1 < totalLines ? starts[i + 1]! - 1 : data.length);
  // Every formatted byte goes into one buffer: the window's bytes plus, per
  // line, a joiner, a line number, a tab and the truncation mark.
  const bound = lineEnd(end - 1) - starts[first - 1]! + (end - first + 1) * (MAX_LINE_OVERHEAD + TRUNCATED_SUFFIX.length);
  const out = Buffer.allocUnsafe(Math.min(bound, limits.maxResponseBytes));
  let lines = 0;
  let bytes = 0;
  for (let i = first - 1; i < end; i++) {
    const start = starts[i]!;
    const stop = lineEnd(i);
    const cut = stop - start > limits.maxLineBytes;
    const kept = cut ? limits.maxLineBytes : stop - start;
    const prefix = `${lines > 0 ? "\n" : ""}${i + 1}\t`;
    const newTotal = bytes + prefix.length + kept + (cut ? TRUNCATED_SUFFIX.length : 0);
    if (newTotal > limits.maxResponseBytes) {
      return linesError(`output would exceed ${limits.maxResponseBytes} bytes. Read less at a time using offset and limit parameters.`);
    }
    if (lines >= limits.maxResponseLines) {
      return linesError(`output would exceed ${limits.maxResponseLines} lines. Read less at a time using offset and limit parameters.`);
    }
    let at = writeLatin1(out, bytes, prefix);
    at = copyBytes(data, start, start + kept, out, at);
    if (cut) TRUNCATED_SUFFIX.copy(out, at);
    lines++;
    bytes = newTotal;
  }
  return omitZero({
    success: true,
    file_size: fileSize,
    total_lines: totalLines,
    lines_read: lines,
    content: out.subarray(0, bytes),
    error: "",
  });
}
