import { type Ending, lineParts, splitEnding, trimRightBlanks, trimSpace } from "./byte-text.js";

/**
 * Coder's line-wise matching passes (2 and 3 of fuzzyReplace) and the splice
 * that replaces a matched window line by line. All strings are byte strings
 * (see byte-text.ts); lines come from splitAfterNewline.
 */

/** The two line-wise passes: trailing spaces/tabs ignored, or all surrounding Unicode whitespace. */
export type LinePass = "trailing_whitespace" | "indentation";

/**
 * Compares a line the way the pass does. Endings never decide a match: Coder
 * pairs identical endings, "\n" with "\r\n", and an empty ending (a last line
 * without one) with anything, which covers every pair SplitAfter produces.
 */
function lineKey(line: string, pass: LinePass): string {
  const [body] = splitEnding(line);
  return pass === "trailing_whitespace" ? trimRightBlanks(body) : trimSpace(body);
}

/** The common ending of all lines but an unterminated last one; undefined when fewer than 2 lines or mixed. */
export function internalLineEnding(lines: readonly string[]): Ending | undefined {
  if (lines.length < 2) return undefined;
  let want: Ending = "";
  for (let i = 0; i < lines.length; i++) {
    const [, e] = splitEnding(lines[i]!);
    if (e === "") {
      if (i === lines.length - 1) continue;
      return undefined;
    }
    if (want === "") want = e;
    else if (e !== want) return undefined;
  }
  return want === "" ? undefined : want;
}

/** The lines joined with every terminated non-last line's ending replaced by `ending`. */
export function rewriteInternalEnding(lines: readonly string[], ending: Ending): string {
  let out = "";
  lines.forEach((line, i) => {
    const [body, e] = splitEnding(line);
    out += body + (i === lines.length - 1 || e === "" ? e : ending);
  });
  return out;
}

/**
 * Start indexes of the non-overlapping windows of `contentLines` that match
 * `searchLines` under `pass`, earliest first.
 */
export function findLineWindows(contentLines: readonly string[], searchLines: readonly string[], pass: LinePass): number[] {
  return scanWindows(contentLines, searchLines, pass, false);
}

/** Like findLineWindows but overlapping windows count too (for the swap hint). */
export function findOverlappingLineWindows(
  contentLines: readonly string[],
  searchLines: readonly string[],
  pass: LinePass,
): number[] {
  return scanWindows(contentLines, searchLines, pass, true);
}

function scanWindows(
  contentLines: readonly string[],
  searchLines: readonly string[],
  pass: LinePass,
  overlap: boolean,
): number[] {
  const starts: number[] = [];
  const n = searchLines.length;
  if (n === 0 || n > contentLines.length) return starts;
  const want = searchLines.map((l) => lineKey(l, pass));
  const keys: (string | undefined)[] = new Array(contentLines.length);
  const keyAt = (i: number) => (keys[i] ??= lineKey(contentLines[i]!, pass));
  for (let i = 0; i <= contentLines.length - n; ) {
    let j = 0;
    while (j < n && keyAt(i + j) === want[j]) j++;
    if (j === n) {
      starts.push(i);
      i += overlap ? 1 : n;
    } else {
      i++;
    }
  }
  return starts;
}

/** The match ends at a file without a final newline: nothing but "" follows and the last matched line has no ending. */
function atNoNewlineEof(contentLines: readonly string[], end: number): boolean {
  if (end === 0) return false;
  for (let i = end; i < contentLines.length; i++) if (contentLines[i] !== "") return false;
  return splitEnding(contentLines[end - 1]!)[1] === "";
}

/**
 * Replaces each window (start indexes from findLineWindows) with the splice
 * of `replaceLines`, keeping every other line's bytes.
 */
export function spliceWindows(
  contentLines: readonly string[],
  starts: readonly number[],
  searchLines: readonly string[],
  replaceLines: readonly string[],
  forcedEnding: Ending,
): string {
  const parts: string[] = [];
  let prev = 0;
  for (const start of starts) {
    const end = start + searchLines.length;
    for (let i = prev; i < start; i++) parts.push(contentLines[i]!);
    const matched = contentLines.slice(start, end);
    parts.push(buildReplacement(matched, searchLines, replaceLines, forcedEnding, atNoNewlineEof(contentLines, end)));
    prev = end;
  }
  for (let i = prev; i < contentLines.length; i++) parts.push(contentLines[i]!);
  return parts.join("");
}

/** How many leading and trailing lines search and replace share, bodies compared after TrimSpace. */
function alignSearchReplace(searchLines: readonly string[], repLines: readonly string[]): [prefix: number, suffix: number] {
  const eq = (a: string, b: string) => trimSpace(splitEnding(a)[0]) === trimSpace(splitEnding(b)[0]);
  const max = Math.min(searchLines.length, repLines.length);
  let prefix = 0;
  while (prefix < max && eq(searchLines[prefix]!, repLines[prefix]!)) prefix++;
  let suffix = 0;
  while (suffix < max - prefix && eq(searchLines[searchLines.length - 1 - suffix]!, repLines[repLines.length - 1 - suffix]!)) {
    suffix++;
  }
  return [prefix, suffix];
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * The indentation unit of lines that have both indentation and a body: one
 * tab, or the GCD of the space-only leads. Undefined when there is no
 * indentation, a lead mixes tabs and spaces, or lines disagree.
 */
function detectIndentUnit(lines: readonly string[]): string | undefined {
  let sawTab = false;
  let spaces = 0;
  for (const line of lines) {
    const { lead, middle } = lineParts(line);
    if (lead === "" || middle === "") continue;
    if (!lead.includes(" ")) sawTab = true;
    else if (!lead.includes("\t")) spaces = spaces === 0 ? lead.length : gcd(spaces, lead.length);
    else return undefined;
  }
  if (sawTab) return spaces > 0 ? undefined : "\t";
  return spaces > 0 ? " ".repeat(spaces) : undefined;
}

/** How many units make up `lead`, or undefined when it is not whole units. */
function indentLevel(lead: string, unit: string): number | undefined {
  if (lead.length % unit.length !== 0) return undefined;
  const n = lead.length / unit.length;
  return unit.repeat(n) === lead ? n : undefined;
}

/** An inserted line's lead in the file's unit: fileBase + (repLevel − searchBase) units. */
function translateIndent(rLead: string, sLead: string, cLead: string, searchUnit: string, fileUnit: string): string | undefined {
  const repLevel = indentLevel(rLead, searchUnit);
  const searchBase = indentLevel(sLead, searchUnit);
  const fileBase = indentLevel(cLead, fileUnit);
  if (repLevel === undefined || searchBase === undefined || fileBase === undefined) return undefined;
  const target = fileBase + repLevel - searchBase;
  return target < 0 ? undefined : fileUnit.repeat(target);
}

function isNewline(e: Ending): boolean {
  return e === "\n" || e === "\r\n";
}

/** Same position class for the splice: equal, or both newlines (empty is no wildcard here). */
function endingShapeEqual(a: Ending, b: Ending): boolean {
  return a === b || (isNewline(a) && isNewline(b));
}

/** Which search/matched line a replacement line takes its whitespace from, and whether it is an insertion. */
function referenceLine(i: number, searchLines: readonly string[], repLines: readonly string[], prefix: number, suffix: number) {
  const s = searchLines.length;
  const r = repLines.length;
  if (i < prefix) return { ref: i, inserted: false };
  if (i >= r - suffix) return { ref: i - (r - s), inserted: false };
  if (i - prefix < s - prefix - suffix) return { ref: i, inserted: false };
  // A pure insertion belongs to the scope whose replacement lead it shares: suffix first, then prefix.
  const lead = lineParts(repLines[i]!).lead;
  if (prefix > 0 && suffix > 0) {
    const inPrefixScope = lead !== lineParts(repLines[r - suffix]!).lead && lead === lineParts(repLines[prefix - 1]!).lead;
    return { ref: inPrefixScope ? prefix - 1 : s - suffix, inserted: true };
  }
  if (suffix > 0) return { ref: s - suffix, inserted: true };
  if (prefix > 0) return { ref: prefix - 1, inserted: true };
  return { ref: Math.min(i, s - 1), inserted: true };
}

/**
 * Coder's buildReplacementLines: the replacement for one matched window,
 * decided per position (leading whitespace, trailing whitespace, ending).
 * Where search and replace agree at a position the file's bytes win; where
 * they disagree the caller meant the change and the replacement's bytes win.
 * Inserted lines get their indentation translated to the file's unit.
 */
function buildReplacement(
  matched: readonly string[],
  searchLines: readonly string[],
  repLines: readonly string[],
  forcedEnding: Ending,
  atEof: boolean,
): string {
  const [prefix, suffix] = alignSearchReplace(searchLines, repLines);
  const searchUnit = detectIndentUnit([...searchLines, ...repLines]);
  const fileUnit = detectIndentUnit(matched);
  const last = repLines.length - 1;
  let out = "";
  repLines.forEach((rLine, i) => {
    const { ref, inserted } = referenceLine(i, searchLines, repLines, prefix, suffix);
    const s = lineParts(searchLines[ref]!);
    const r = lineParts(rLine);
    const c = lineParts(matched[ref]!);
    let lead = r.lead;
    let trail = r.trail;
    if (r.middle !== "" && inserted) {
      const translated = searchUnit && fileUnit ? translateIndent(r.lead, s.lead, c.lead, searchUnit, fileUnit) : undefined;
      lead = translated ?? c.lead;
    } else if (r.middle !== "") {
      if (s.lead === r.lead) lead = c.lead;
      if (s.trail === r.trail) trail = c.trail;
    }
    let ending = r.ending;
    if (!inserted && endingShapeEqual(s.ending, r.ending)) {
      // Interior lines keep their newline when the file line is an unterminated last line.
      ending = c.ending === "" && i < last ? r.ending : c.ending;
    }
    if (inserted && i === last && atEof) ending = "";
    if (forcedEnding !== "" && (i < last || !atEof)) ending = forcedEnding;
    if (i === last && !atEof && ending === "") ending = forcedEnding || "\n";
    out += lead + r.middle + trail + ending;
  });
  return out;
}
