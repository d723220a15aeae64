/**
 * Edit matching for `edit-files`: the exact pass of Coder's fuzzyReplace
 * and a unified diff of the result. Files are handled as raw bytes (latin1
 * strings map each byte to one char), so no encoding is assumed.
 */

/** One edit from the request, after choosing old_text/new_text or the legacy search/replace keys. */
export interface Edit {
  search: string;
  replace: string;
  replaceAll: boolean;
}

/** Which matching pass applied an edit (for the agentd_files_* metric). */
export type MatchPass = "exact" | "trailing_whitespace" | "indentation";

/** A reason an edit cannot apply; `message` is Coder's reason text (e.g. `old_text not found in file. ...`). */
export class EditError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EditError";
  }
}

/** Lines of context around each change in a diff (go-udiff's default). */
const DIFF_CONTEXT_LINES = 3;

const EMPTY_SEARCH = "old_text must not be empty; include the text you want to match";
const NOT_FOUND =
  "old_text not found in file. Verify that old_text matches the file content exactly, including whitespace and indentation";

function occurrences(content: string, search: string): number[] {
  const at: number[] = [];
  for (let i = content.indexOf(search); i !== -1; i = content.indexOf(search, i + search.length)) at.push(i);
  return at;
}

function applyOne(content: string, edit: Edit): string {
  const search = Buffer.from(edit.search, "utf8").toString("latin1");
  const replace = Buffer.from(edit.replace, "utf8").toString("latin1");
  if (search === "") throw new EditError(EMPTY_SEARCH);
  const at = occurrences(content, search);
  if (at.length === 0) throw new EditError(NOT_FOUND);
  if (edit.replaceAll) return content.split(search).join(replace);
  if (at.length > 1) {
    throw new EditError(
      `old_text matches ${at.length} occurrences (expected exactly 1). Include more surrounding context to make the match unique, or set replace_all to true`,
    );
  }
  return content.slice(0, at[0]) + replace + content.slice(at[0]! + search.length);
}

/** Applies the edits in order to a file's raw bytes (Coder's fuzzyReplace per edit); throws EditError. */
export function applyEdits(content: Buffer, edits: Edit[]): { content: Buffer; passes: MatchPass[] } {
  let text = content.toString("latin1");
  const passes: MatchPass[] = [];
  for (const edit of edits) {
    text = applyOne(text, edit);
    passes.push("exact");
  }
  return { content: Buffer.from(text, "latin1"), passes };
}

function splitLines(b: Buffer): string[] {
  const text = b.toString("latin1");
  if (text === "") return [];
  const lines = text.split(/(?<=\n)/);
  return lines;
}

/** go-udiff-style unified diff (3 context lines) labelled `--- <label>` / `+++ <label>`; "" when equal. */
export function unifiedDiff(label: string, before: Buffer, after: Buffer): string {
  if (before.equals(after)) return "";
  const a = splitLines(before);
  const b = splitLines(after);
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const start = Math.max(0, pre - DIFF_CONTEXT_LINES);
  const endA = Math.min(a.length, a.length - suf + DIFF_CONTEXT_LINES);
  const endB = Math.min(b.length, b.length - suf + DIFF_CONTEXT_LINES);
  const line = (prefix: string, l: string) => prefix + (l.endsWith("\n") ? l : `${l}\n\\ No newline at end of file\n`);
  let out = `--- ${label}\n+++ ${label}\n@@ -${range(start, endA - start)} +${range(start, endB - start)} @@\n`;
  for (let i = start; i < pre; i++) out += line(" ", a[i]!);
  for (let i = pre; i < a.length - suf; i++) out += line("-", a[i]!);
  for (let i = pre; i < b.length - suf; i++) out += line("+", b[i]!);
  for (let i = a.length - suf; i < endA; i++) out += line(" ", a[i]!);
  return Buffer.from(out, "latin1").toString("utf8");
}

function range(start: number, count: number): string {
  if (count === 1) return `${start + 1}`;
  return `${count === 0 ? start : start + 1},${count}`;
}
