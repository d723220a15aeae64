import { decodeUtf8LikeGo } from "../process/go-utf8.js";
import { toBytes } from "./byte-text.js";

/** Unchanged lines around each hunk (go-udiff's DefaultContextLines, which Coder passes). */
const CONTEXT_LINES = 3;

/**
 * Edit distance beyond which the changed middle is reported as one
 * replacement instead of being searched further. Bounds time and memory
 * (the search keeps about D² numbers) on two unrelated large files.
 */
const MAX_EDIT_DISTANCE = 1000;

/** Lines [aStart, aEnd) of the old text become lines [bStart, bEnd) of the new one. */
interface LineEdit {
  aStart: number;
  aEnd: number;
  bStart: number;
  bEnd: number;
}

/** go-udiff's splitLines: every line keeps its "\n"; a final empty line is dropped. */
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

/**
 * A shortest edit script between a[lo..aHi) and b[lo..bHi) (Myers' greedy
 * forward search), as the runs of lines both keep: [aIndex, bIndex, length].
 * Undefined when the distance exceeds MAX_EDIT_DISTANCE.
 */
function commonRuns(
  a: readonly string[],
  b: readonly string[],
  lo: number,
  aHi: number,
  bHi: number,
): [number, number, number][] | undefined {
  const n = aHi - lo;
  const m = bHi - lo;
  const max = Math.min(n + m, MAX_EDIT_DISTANCE);
  const trace: Int32Array[] = [];
  let v = new Int32Array(3);
  for (let d = 0; d <= max; d++) {
    const next = new Int32Array(2 * d + 3);
    // next[k + d + 1] holds the furthest x on diagonal k after d edits.
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && v[k - 1 + d]! < v[k + 1 + d]!);
      let x = down ? v[k + 1 + d]! : v[k - 1 + d]! + 1;
      let y = x - k;
      while (x < n && y < m && a[lo + x] === b[lo + y]) {
        x++;
        y++;
      }
      next[k + d + 1] = x;
      if (x >= n && y >= m) {
        trace.push(next);
        return backtrack(trace, n, m, lo);
      }
    }
    trace.push(next);
    v = next;
  }
  return undefined;
}

/** Walks the Myers trace back from (n, m), collecting the diagonal runs. */
function backtrack(trace: Int32Array[], n: number, m: number, lo: number): [number, number, number][] {
  const runs: [number, number, number][] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d > 0; d--) {
    // trace[d - 1][k + d] is the furthest x on diagonal k after d - 1 edits.
    const prev = trace[d - 1]!;
    const k = x - y;
    const down = k === -d || (k !== d && prev[k - 1 + d]! < prev[k + 1 + d]!);
    const prevK = down ? k + 1 : k - 1;
    const prevX = prev[prevK + d]!;
    const snakeX = down ? prevX : prevX + 1;
    if (x > snakeX) runs.push([lo + snakeX, lo + snakeX - k, x - snakeX]);
    x = prevX;
    y = prevX - prevK;
  }
  if (x > 0) runs.push([lo, lo, x]);
  return runs.reverse();
}

/** The line edits turning a into b, in order, like go-udiff's Lines. */
function lineEdits(a: readonly string[], b: readonly string[]): LineEdit[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const aHi = a.length - tail;
  const bHi = b.length - tail;
  if (head === aHi && head === bHi) return [];
  const runs = commonRuns(a, b, head, aHi, bHi) ?? [];
  const edits: LineEdit[] = [];
  let pa = head;
  let pb = head;
  for (const [x, y, len] of [...runs, [aHi, bHi, 0] as [number, number, number]]) {
    if (pa < x || pb < y) edits.push({ aStart: pa, aEnd: x, bStart: pb, bEnd: y });
    pa = x + len;
    pb = y + len;
  }
  return edits;
}

type HunkLine = [kind: " " | "-" | "+", text: string];

interface Hunk {
  fromLine: number;
  toLine: number;
  lines: HunkLine[];
}

/**
 * go-udiff's toUnified. Its quirk is kept on purpose: lines between two
 * edits joined into one hunk are not counted toward later hunks' new-file
 * line numbers, so the output matches Coder's byte for byte.
 */
function buildHunks(a: readonly string[], b: readonly string[], edits: readonly LineEdit[]): Hunk[] {
  const hunks: Hunk[] = [];
  const addEqual = (h: Hunk, from: number, to: number): number => {
    let added = 0;
    for (let i = Math.max(from, 0); i < Math.min(to, a.length); i++, added++) h.lines.push([" ", a[i]!]);
    return added;
  };
  let h: Hunk | undefined;
  let last = 0;
  let toLine = 0;
  for (const edit of edits) {
    const start = edit.aStart;
    if (h && start <= last + 2 * CONTEXT_LINES) {
      addEqual(h, last, start);
    } else {
      if (h) {
        addEqual(h, last, last + CONTEXT_LINES);
        hunks.push(h);
      }
      toLine += start - last;
      h = { fromLine: start + 1, toLine: toLine + 1, lines: [] };
      const delta = addEqual(h, start - CONTEXT_LINES, start);
      h.fromLine -= delta;
      h.toLine -= delta;
    }
    for (let i = start; i < edit.aEnd; i++) h.lines.push(["-", a[i]!]);
    last = edit.aEnd;
    for (let i = edit.bStart; i < edit.bEnd; i++, toLine++) h.lines.push(["+", b[i]!]);
  }
  if (h) {
    addEqual(h, last, last + CONTEXT_LINES);
    hunks.push(h);
  }
  return hunks;
}

/** "-a,b" / "-a" / "-0,0" as go-udiff writes a hunk range. */
function range(sign: string, line: number, count: number): string {
  if (count > 1) return `${sign}${line},${count}`;
  if (line === 1 && count === 0) return `${sign}0,0`;
  return `${sign}${line}`;
}

function renderHunk(h: Hunk): string {
  const from = h.lines.filter(([k]) => k !== "+").length;
  const to = h.lines.filter(([k]) => k !== "-").length;
  let out = `@@ ${range("-", h.fromLine, from)} ${range("+", h.toLine, to)} @@\n`;
  for (const [kind, text] of h.lines) {
    out += kind + text;
    if (!text.endsWith("\n")) out += "\n\\ No newline at end of file\n";
  }
  return out;
}

/**
 * A unified diff of two file contents as go-udiff writes it (Coder's
 * `include_diff`): `--- <label>` and `+++ <label>` headers, hunks with 3
 * lines of context, `\ No newline at end of file` after a last line without
 * one; "" when the contents are equal. Invalid UTF-8 in the result becomes
 * U+FFFD, as Go's JSON encoding of the diff string would make it. Where
 * several shortest diffs exist (repeated lines), the lines chosen may differ
 * from go-udiff's.
 */
export function unifiedDiff(label: string, before: Buffer, after: Buffer): string {
  if (before.equals(after)) return "";
  const a = splitLines(before.toString("latin1"));
  const b = splitLines(after.toString("latin1"));
  const hunks = buildHunks(a, b, lineEdits(a, b));
  if (hunks.length === 0) return "";
  const name = toBytes(label);
  const text = `--- ${name}\n+++ ${name}\n` + hunks.map(renderHunk).join("");
  return decodeUtf8LikeGo(Buffer.from(text, "latin1"));
}
