import { goJson } from "../http/json.js";
import { decodeUtf8LikeGo, sequenceLength } from "../process/go-utf8.js";
import type { LinesResponse } from "./read-lines.js";

/** U+FFFD in UTF-8: what Go's encoder writes for a byte that is not valid UTF-8. */
const REPLACEMENT = Buffer.from("\uFFFD");
/** Ends the content string, the object and the reply. */
const CLOSE = Buffer.from('"}\n');
const HEX = "0123456789abcdef";
/** Length of `\u2028` or `\u2029`. */
const LINE_SEPARATOR_ESCAPE_BYTES = 6;

/**
 * How each ASCII byte is written inside a JSON string by JSON.stringify plus
 * Go's HTML escapes (goJson): "" when unchanged, else its escape.
 */
const ASCII_ESCAPES: readonly string[] = Array.from({ length: 0x80 }, (_, b) => {
  const named: Record<number, string> = { 0x08: "\\b", 0x09: "\\t", 0x0a: "\\n", 0x0c: "\\f", 0x0d: "\\r", 0x22: '\\"', 0x5c: "\\\\" };
  if (named[b] !== undefined) return named[b];
  if (b < 0x20 || b === 0x3c || b === 0x3e || b === 0x26) return `\\u00${HEX[b >> 4]}${HEX[b & 15]}`;
  return "";
});

/** ASCII_ESCAPES as lengths: 1 for a byte written as it is. */
const ASCII_LENGTHS = Uint8Array.from(ASCII_ESCAPES, (e) => e.length || 1);

/** Bytes escapeInto writes for `bytes` (its first pass, so the answer is allocated once, at its size). */
function escapedLength(bytes: Uint8Array): number {
  let length = 0;
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      length += ASCII_LENGTHS[b]!;
      i++;
      continue;
    }
    const n = sequenceLength(bytes, i);
    if (n === 0) {
      length += REPLACEMENT.length;
      i++;
    } else {
      length += n === 3 && isLineSeparator(bytes, i) ? LINE_SEPARATOR_ESCAPE_BYTES : n;
      i += n;
    }
  }
  return length;
}

/** True for the UTF-8 bytes of U+2028 and U+2029 at `i`, which goJson escapes. */
function isLineSeparator(b: Uint8Array, i: number): boolean {
  return b[i] === 0xe2 && b[i + 1] === 0x80 && (b[i + 2] === 0xa8 || b[i + 2] === 0xa9);
}

/**
 * Writes `bytes` as the inside of a JSON string, exactly as goJson would
 * write decodeUtf8LikeGo(bytes) (Go's encoding/json on a Go string), straight
 * from the bytes: no decoded string, no re-encoding. Returns the end offset;
 * `out` must hold escapedLength(bytes) bytes from `at`.
 */
function escapeInto(bytes: Uint8Array, out: Buffer, at: number): number {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      if (ASCII_LENGTHS[b] === 1) {
        out[at++] = b;
        continue;
      }
      const escape = ASCII_ESCAPES[b]!;
      for (let k = 0; k < escape.length; k++) out[at++] = escape.charCodeAt(k);
      continue;
    }
    const n = sequenceLength(bytes, i);
    if (n === 0) {
      at += REPLACEMENT.copy(out, at);
      i++;
    } else if (n === 3 && isLineSeparator(bytes, i)) {
      at += out.write(bytes[i + 2] === 0xa8 ? "\\u2028" : "\\u2029", at, "latin1");
      i += 3;
    } else {
      for (const end = i + n; i < end; i++) out[at++] = bytes[i]!;
    }
  }
  return at;
}

/**
 * A read-file-lines answer as goJson would encode it with the content
 * decoded (decodeUtf8LikeGo), built straight from the content bytes: for a
 * large window this skips the decode, JSON.stringify's copy of a long
 * string, and the encode back to bytes.
 */
export function linesResponseJson(response: LinesResponse): Buffer {
  const { content, ...rest } = response;
  if (content === undefined) return Buffer.from(goJson(rest));
  // Go's field order puts content before error; an answer with content has no error.
  const head = goJson(rest);
  const open = Buffer.from(`${head.slice(0, head.lastIndexOf("}"))},"content":"`);
  const out = Buffer.allocUnsafe(open.length + escapedLength(content) + CLOSE.length);
  const at = escapeInto(content, out, open.copy(out, 0));
  CLOSE.copy(out, at);
  return out;
}

/** The content as the text Go's JSON encoder would carry (invalid UTF-8 as U+FFFD per byte). */
export function contentText(response: LinesResponse): string {
  return response.content === undefined ? "" : decodeUtf8LikeGo(response.content);
}
