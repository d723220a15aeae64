import { goQuote } from "../process/errors.js";
import { goRunes, splitEnding, trimSpace } from "./byte-text.js";
import { findOverlappingLineWindows } from "./edit-lines.js";

/**
 * The hint Coder appends to "old_text not found" when every pass missed:
 * a miscount hint (the search has a repeated character a few times too many
 * or too few) or, failing that, a swap hint (new_text is what the file has).
 * All text arguments are byte strings (see byte-text.ts).
 */

/** Line numbers listed per hint before " and N more" (Coder's cap). */
const MAX_LISTED_LINES = 5;

/** Miscount hints listed before "and N more" (Coder's maxMiscountHints). */
const MAX_MISCOUNT_HINTS = 3;

/**
 * Search-line × file-line comparisons the miscount hint may make. Not
 * Coder's: it bounds the work an error message can cost on a large file
 * (a 2,000-line search against a 500-line file fits; blank lines count).
 */
const MAX_MISCOUNT_COMPARISONS = 1_000_000;

/** "1, 2, 3, 4, 5 and 2 more" */
function listWithMore(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LISTED_LINES).join(", ");
  const more = items.length - MAX_LISTED_LINES;
  return more > 0 ? `${shown} and ${more} more` : shown;
}

/** The trimmed line's rune counts. */
function runeCounts(line: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const r of goRunes(trimSpace(splitEnding(line)[0]))) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/**
 * The one rune whose count differs between the two lines, when every other
 * rune's count agrees and that rune occurs at least twice on one side.
 */
function singleRuneMismatch(s: Map<number, number>, c: Map<number, number>): [rune: number, sc: number, cc: number] | undefined {
  if (Math.abs(s.size - c.size) > 1) return undefined;
  let found: [number, number, number] | undefined;
  const note = (rune: number, sc: number, cc: number): boolean => {
    if (sc === cc) return true;
    if (found) return false;
    found = [rune, sc, cc];
    return true;
  };
  for (const [rune, sc] of s) if (!note(rune, sc, c.get(rune) ?? 0)) return undefined;
  for (const [rune, cc] of c) if (!s.has(rune) && !note(rune, 0, cc)) return undefined;
  if (!found || Math.max(found[1], found[2]) < 2) return undefined;
  return found;
}

function isBlankLine(line: string): boolean {
  return trimSpace(splitEnding(line)[0]) === "";
}

function codePointLabel(rune: number): string {
  return `U+${rune.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** `Your old_text has 5 "=" (U+003D); the file has 7 at line 2, …` hints, or "". */
function miscountHint(contentLines: readonly string[], searchLines: readonly string[]): string {
  const wanted = searchLines.filter((line) => !isBlankLine(line));
  if (wanted.length * contentLines.length > MAX_MISCOUNT_COMPARISONS) return "";
  const fileLines = contentLines.map((line, i) => ({ line, number: i + 1 })).filter(({ line }) => !isBlankLine(line));
  const fileCounts = new Map<number, Map<number, number>>();
  const hints: string[] = [];
  for (const searchLine of wanted) {
    const s = runeCounts(searchLine);
    const byRune = new Map<number, { sc: number; at: string[] }>();
    for (const { line, number } of fileLines) {
      let c = fileCounts.get(number);
      if (!c) fileCounts.set(number, (c = runeCounts(line)));
      const mismatch = singleRuneMismatch(s, c);
      if (!mismatch) continue;
      const [rune, sc, cc] = mismatch;
      const entry = byRune.get(rune) ?? { sc, at: [] };
      entry.at.push(`${cc} at line ${number}`);
      byRune.set(rune, entry);
    }
    for (const [rune, { sc, at }] of byRune) {
      const quoted = goQuote(String.fromCodePoint(rune));
      hints.push(`Your old_text has ${sc} ${quoted} (${codePointLabel(rune)}); the file has ${listWithMore(at)}`);
    }
  }
  const more = hints.length - MAX_MISCOUNT_HINTS;
  const shown = hints.slice(0, MAX_MISCOUNT_HINTS);
  if (more > 0) shown.push(`and ${more} more`);
  return shown.join(". ");
}

/** 1-based line numbers where `needle` starts in `content`, overlapping occurrences included, each line once. */
function substringLines(content: string, needle: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let counted = 0;
  for (let at = content.indexOf(needle); at >= 0; at = content.indexOf(needle, at + 1)) {
    for (let nl = content.indexOf("\n", counted); nl >= 0 && nl < at; nl = content.indexOf("\n", nl + 1)) {
      line++;
      counted = nl + 1;
    }
    if (lines[lines.length - 1] !== line) lines.push(line);
  }
  return lines;
}

/** `Did you swap "old_text" and "new_text"? …` when new_text is found in the file, or "". */
function swapHint(content: string, contentLines: readonly string[], replace: string, replaceLines: readonly string[]): string {
  if (trimSpace(replace) === "") return "";
  let lines = substringLines(content, replace);
  if (lines.length === 0) lines = findOverlappingLineWindows(contentLines, replaceLines, "trailing_whitespace").map((i) => i + 1);
  if (lines.length === 0) lines = findOverlappingLineWindows(contentLines, replaceLines, "indentation").map((i) => i + 1);
  if (lines.length === 0) return "";
  return `Did you swap "old_text" and "new_text"? Your new_text string appears at line ${listWithMore(lines.map(String))}`;
}

/** The hint for a search that no pass matched (miscount first, then swap), or "". */
export function notFoundHint(
  content: string,
  contentLines: readonly string[],
  searchLines: readonly string[],
  replace: string,
  replaceLines: readonly string[],
): string {
  return miscountHint(contentLines, searchLines) || swapHint(content, contentLines, replace, replaceLines);
}
