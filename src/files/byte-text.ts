/**
 * Text helpers over "byte strings": JS strings holding one char per byte
 * (Buffer#toString("latin1")), so every index and length is a byte offset, as
 * in a Go string. Files are edited as raw bytes (invalid UTF-8 and binary
 * content must round-trip untouched), so the matcher works on bytes and
 * decodes UTF-8 only where Go's semantics look at runes: TrimSpace's Unicode
 * whitespace and the rune counts of the miscount hint.
 */

/** A line ending as Go's SplitAfter(s, "\n") leaves it: "\r\n", "\n" or "" (last line). */
export type Ending = "\r\n" | "\n" | "";

/** UTF-8 text as a byte string. */
export function toBytes(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}

/** strings.SplitAfter(s, "\n"): every element keeps its "\n"; the last may be "" or unterminated. */
export function splitAfterNewline(s: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let nl = s.indexOf("\n"); nl >= 0; nl = s.indexOf("\n", start)) {
    lines.push(s.slice(start, nl + 1));
    start = nl + 1;
  }
  lines.push(s.slice(start));
  return lines;
}

/** splitAfterNewline without the empty element a trailing "\n" produces. */
export function splitAfterNewlineTrimmed(s: string): string[] {
  const lines = splitAfterNewline(s);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** A line's bytes before its ending, and the ending. */
export function splitEnding(line: string): [body: string, ending: Ending] {
  if (line.endsWith("\r\n")) return [line.slice(0, -2), "\r\n"];
  if (line.endsWith("\n")) return [line.slice(0, -1), "\n"];
  return [line, ""];
}

/** A line cut into leading spaces/tabs, body, trailing spaces/tabs and ending. */
export interface LineParts {
  lead: string;
  middle: string;
  trail: string;
  ending: Ending;
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Cuts a line into LineParts (only ' ' and '\t' count as indentation or trailing space). */
export function lineParts(line: string): LineParts {
  const [body, ending] = splitEnding(line);
  let i = 0;
  while (i < body.length && isBlank(body.charCodeAt(i))) i++;
  let j = body.length;
  while (j > i && isBlank(body.charCodeAt(j - 1))) j--;
  return { lead: body.slice(0, i), middle: body.slice(i, j), trail: body.slice(j), ending };
}

/** strings.TrimRight(s, " \t"). */
export function trimRightBlanks(s: string): string {
  let j = s.length;
  while (j > 0 && isBlank(s.charCodeAt(j - 1))) j--;
  return s.slice(0, j);
}

/** ASCII whitespace in Go's unicode.IsSpace: \t \n \v \f \r and space. */
function isAsciiSpace(c: number): boolean {
  return (c >= 0x09 && c <= 0x0d) || c === 0x20;
}

/**
 * The UTF-8 encodings (as byte strings) of the non-ASCII runes Go's
 * unicode.IsSpace accepts: U+0085, U+00A0, U+1680, U+2000–U+200A, U+2028,
 * U+2029, U+202F, U+205F and U+3000.
 */
const WIDE_SPACES: readonly string[] = [0x85, 0xa0, 0x1680, ...range(0x2000, 0x200a), 0x2028, 0x2029, 0x202f, 0x205f, 0x3000].map(
  (cp) => toBytes(String.fromCodePoint(cp)),
);

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function wideSpaceAt(s: string, i: number): number {
  for (const w of WIDE_SPACES) if (s.startsWith(w, i)) return w.length;
  return 0;
}

function wideSpaceBefore(s: string, end: number): number {
  for (const w of WIDE_SPACES) if (end >= w.length && s.startsWith(w, end - w.length)) return w.length;
  return 0;
}

/**
 * strings.TrimSpace on a byte string: strips Unicode whitespace from both
 * ends. A byte that does not start valid UTF-8 is U+FFFD to Go, which is not
 * space, so trimming stops there, as it does here.
 */
export function trimSpace(s: string): string {
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    const w = c < 0x80 ? (isAsciiSpace(c) ? 1 : 0) : wideSpaceAt(s, i);
    if (w === 0) break;
    i += w;
  }
  let j = s.length;
  while (j > i) {
    const c = s.charCodeAt(j - 1);
    const w = c < 0x80 ? (isAsciiSpace(c) ? 1 : 0) : wideSpaceBefore(s, j);
    if (w === 0) break;
    j -= w;
  }
  return s.slice(i, j);
}

/** Length of the valid UTF-8 sequence at byte i, or 0 (Go's utf8.DecodeRune rules). */
function sequenceLength(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const b = s.charCodeAt(i + k);
    return b >= lo && b <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) return cont(1, c === 0xe0 ? 0xa0 : 0x80, c === 0xed ? 0x9f : 0xbf) && cont(2) ? 3 : 0;
  if (c >= 0xf0 && c <= 0xf4) {
    return cont(1, c === 0xf0 ? 0x90 : 0x80, c === 0xf4 ? 0x8f : 0xbf) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** Go's `for _, r := range s`: code points, each invalid byte read as U+FFFD. */
export function goRunes(s: string): number[] {
  const runes: number[] = [];
  for (let i = 0; i < s.length; ) {
    const n = sequenceLength(s, i);
    if (n === 0) {
      runes.push(0xfffd);
      i++;
    } else {
      runes.push(Buffer.from(s.slice(i, i + n), "latin1").toString("utf8").codePointAt(0)!);
      i += n;
    }
  }
  return runes;
}
