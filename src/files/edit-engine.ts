import { type Ending, splitAfterNewline, splitAfterNewlineTrimmed } from "./byte-text.js";
import { notFoundHint } from "./edit-hints.js";
import { type LinePass, findLineWindows, internalLineEnding, rewriteInternalEnding, spliceWindows } from "./edit-lines.js";

export { editFromJson } from "./edit-json.js";
export { unifiedDiff } from "./unified-diff.js";

/**
 * The matching engine behind `POST /api/v0/edit-files`: Coder's
 * fuzzyReplace (agent/agentfiles/files.go), applied edit after edit to a
 * file's raw bytes.
 *
 * Bytes: Go edits files as strings of bytes, so agentd does too. The exact
 * pass searches the Buffer itself (no decoding, no line split: one edit in
 * a large file costs one scan and one copy). The line-wise passes, reached
 * only when the exact pass misses, work on latin1 "byte strings" (one char
 * per byte, see byte-text.ts) so that lengths, indexes and slices are byte
 * offsets as in Go, and every byte outside the replaced lines (invalid
 * UTF-8, NULs, CRs) is written back unchanged. old_text and new_text arrive
 * as JSON (Unicode) strings and enter as their UTF-8 bytes, as Go's decoder
 * hands them over.
 */

/** One edit from the request, after choosing old_text/new_text or the legacy search/replace keys. */
export interface Edit {
  search: string;
  replace: string;
  replaceAll: boolean;
}

/** Which matching pass applied an edit (for the agentd_files_* metric). */
export type MatchPass = "exact" | LinePass;

/** A reason an edit cannot apply; `message` is Coder's reason text (e.g. `old_text not found in file. ...`). */
export class EditError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EditError";
  }
}

const EMPTY_SEARCH = "old_text must not be empty; include the text you want to match";
const NOT_FOUND =
  "old_text not found in file. Verify that old_text matches the file content exactly, including whitespace and indentation";
const NOT_FOUND_WITH_ENDINGS =
  "old_text not found in file. Verify that old_text matches the file content exactly, " +
  "including whitespace, indentation, and line endings";

function ambiguous(count: number): EditError {
  return new EditError(
    `old_text matches ${count} occurrences (expected exactly 1). ` +
      "Include more surrounding context to make the match unique, or set replace_all to true",
  );
}

const LF = 0x0a;
const CR = 0x0d;

/** "\r\n" when CRLF lines outnumber LF lines, else "\n" (ties and files without endings too). */
function dominantEnding(content: Buffer): Ending {
  let crlf = 0;
  let lf = 0;
  for (let i = content.indexOf(LF); i >= 0; i = content.indexOf(LF, i + 1)) {
    if (i > 0 && content[i - 1] === CR) crlf++;
    else lf++;
  }
  return crlf > lf ? "\r\n" : "\n";
}

/** Non-overlapping positions of `search`, left to right; stops after `limit`. */
function occurrences(content: Buffer, search: Buffer, limit = Infinity): number[] {
  const found: number[] = [];
  for (let at = content.indexOf(search); at >= 0 && found.length < limit; at = content.indexOf(search, at + search.length)) {
    found.push(at);
  }
  return found;
}

/** Pass 1: exact byte substring. Undefined when `search` does not occur. */
function exactPass(content: Buffer, search: Buffer, replacement: Buffer, replaceAll: boolean): Buffer | undefined {
  const found = occurrences(content, search, replaceAll ? Infinity : 2);
  if (found.length === 0) return undefined;
  if (!replaceAll && found.length > 1) throw ambiguous(occurrences(content, search).length);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const at of found) {
    parts.push(content.subarray(prev, at), replacement);
    prev = at + search.length;
  }
  parts.push(content.subarray(prev));
  return Buffer.concat(parts);
}

/** Passes 2 and 3 over the content's lines. Undefined when neither matches. */
function linePasses(
  contentLines: readonly string[],
  searchLines: readonly string[],
  replaceLines: readonly string[],
  replaceAll: boolean,
  forcedEnding: Ending,
): { content: Buffer; pass: MatchPass } | undefined {
  for (const pass of ["trailing_whitespace", "indentation"] as const) {
    const starts = findLineWindows(contentLines, searchLines, pass);
    if (starts.length === 0) continue;
    if (!replaceAll && starts.length > 1) throw ambiguous(starts.length);
    const chosen = replaceAll ? starts : starts.slice(0, 1);
    const spliced = spliceWindows(contentLines, chosen, searchLines, replaceLines, forcedEnding);
    return { content: Buffer.from(spliced, "latin1"), pass };
  }
  return undefined;
}

/** Coder's fuzzyReplace for one edit. */
function applyEdit(content: Buffer, edit: Edit): { content: Buffer; pass: MatchPass } {
  if (edit.search === "") throw new EditError(EMPTY_SEARCH);
  const search = Buffer.from(edit.search, "utf8");
  const replace = Buffer.from(edit.replace, "utf8");
  const searchLines = splitAfterNewlineTrimmed(search.toString("latin1"));
  const replaceLines = splitAfterNewlineTrimmed(replace.toString("latin1"));

  // A multi-line replacement takes the file's dominant ending, unless search
  // and replace disagree on endings: then the caller means to change them.
  const searchEnding = internalLineEnding(searchLines);
  const replaceEnding = internalLineEnding(replaceLines);
  const forcedEnding: Ending = replaceEnding ? dominantEnding(content) : "";
  const endingIntent = searchEnding !== undefined && replaceEnding !== undefined && searchEnding !== replaceEnding;

  let replacement = replace;
  if (forcedEnding !== "" && !endingIntent && replaceEnding !== forcedEnding) {
    replacement = Buffer.from(rewriteInternalEnding(replaceLines, forcedEnding), "latin1");
  }
  const exact = exactPass(content, search, replacement, edit.replaceAll);
  if (exact) return { content: exact, pass: "exact" };
  if (endingIntent) throw new EditError(NOT_FOUND_WITH_ENDINGS);

  const text = content.toString("latin1");
  const contentLines = splitAfterNewline(text);
  const fuzzy = linePasses(contentLines, searchLines, replaceLines, edit.replaceAll, forcedEnding);
  if (fuzzy) return fuzzy;
  const hint = notFoundHint(text, contentLines, searchLines, replace.toString("latin1"), replaceLines);
  throw new EditError(hint ? `${NOT_FOUND}. ${hint}` : NOT_FOUND);
}

/** Applies the edits in order to a file's raw bytes (Coder's fuzzyReplace per edit); throws EditError. */
export function applyEdits(content: Buffer, edits: Edit[]): { content: Buffer; passes: MatchPass[] } {
  const passes: MatchPass[] = [];
  for (const edit of edits) {
    const result = applyEdit(content, edit);
    content = result.content;
    passes.push(result.pass);
  }
  return { content, passes };
}
