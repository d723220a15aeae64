import { isUtf8 } from "node:buffer";

const REPLACEMENT = "\uFFFD";

/**
 * Length of the valid UTF-8 sequence starting at `i`, or 0 when the bytes
 * there are not one. Follows Go's utf8.DecodeRune: overlong forms, UTF-16
 * surrogates (U+D800–U+DFFF) and code points above U+10FFFF are invalid.
 */
export function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const n = b.length - i;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => k < n && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/**
 * Decodes bytes to a string the way Go's encoding/json renders a Go string:
 * valid UTF-8 is kept and every byte that is not part of a valid sequence
 * becomes one U+FFFD (Node's decoder folds a truncated sequence into a
 * single U+FFFD instead).
 */
export function decodeUtf8LikeGo(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buf)) return buf.toString("utf8");
  let out = "";
  let runStart = 0;
  let i = 0;
  while (i < buf.length) {
    const len = sequenceLength(buf, i);
    if (len > 0) {
      i += len;
      continue;
    }
    if (i > runStart) out += buf.toString("utf8", runStart, i);
    out += REPLACEMENT;
    i += 1;
    runStart = i;
  }
  if (runStart < buf.length) out += buf.toString("utf8", runStart);
  return out;
}
