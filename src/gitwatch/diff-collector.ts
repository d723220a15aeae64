import { humanizeIBytes } from "./humanize.js";

/** A file diff longer than this becomes a stub (agentgit maxFileDiffSize, 256 KiB). */
export const MAX_FILE_DIFF_BYTES = 256 * 1024;

const FILE_HEADER = Buffer.from("diff --git ");
const NEWLINE = 0x0a;

/** One file's part of a unified diff, kept whole only while it is small. */
export interface FileSection {
  /** `diff --git`, mode and index lines, and the `---`/`+++` lines when git wrote them. */
  header: string;
  /** The worktree-side path, unquoted; undefined when the header could not be read. */
  path: string | undefined;
  /** Whole section text, or undefined once it grew past MAX_FILE_DIFF_BYTES or the budget. */
  text: string | undefined;
  /** Bytes git produced for this file. */
  bytes: number;
  /** git printed `Binary files … differ` for it. */
  binary: boolean;
  /** The abbreviated object id of the old side from the `index` line; undefined when there is none. */
  oldBlob: string | undefined;
}

/**
 * Bytes of diff text kept in memory across the collectors of one scan; past
 * `limit` the result can only be the total-size placeholder, so text stops
 * being kept and only counted.
 */
export interface DiffBudget {
  kept: number;
  limit: number;
}

interface OpenSection {
  lines: Buffer[];
  keptBytes: number;
  keeping: boolean;
  headerDone: boolean;
  header: string[];
  bytes: number;
  binary: boolean;
}

/**
 * Splits streamed `git diff` output into per-file sections, keeping at most
 * MAX_FILE_DIFF_BYTES of any one file, and at most the budget overall, in memory.
 */
export class DiffCollector {
  readonly sections: FileSection[] = [];
  private partial: Buffer[] = [];
  private current: OpenSection | undefined;

  constructor(private readonly budget: DiffBudget) {}

  /** Feeds a chunk of git's stdout. */
  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl < 0) {
        this.partial.push(chunk.subarray(start));
        return;
      }
      let line = chunk.subarray(start, nl + 1);
      if (this.partial.length > 0) {
        line = Buffer.concat([...this.partial, line]);
        this.partial = [];
      }
      this.line(line);
      start = nl + 1;
    }
  }

  /** Flushes the last section; call once git has exited. */
  end(): FileSection[] {
    if (this.partial.length > 0) {
      this.line(Buffer.concat(this.partial));
      this.partial = [];
    }
    this.finish();
    return this.sections;
  }

  private line(line: Buffer): void {
    if (line.subarray(0, FILE_HEADER.length).equals(FILE_HEADER)) {
      this.finish();
      this.current = { lines: [], keptBytes: 0, keeping: true, headerDone: false, header: [], bytes: 0, binary: false };
    }
    const cur = this.current;
    if (!cur) return;
    cur.bytes += line.length;
    if (cur.keeping) this.keep(cur, line);
    if (!cur.headerDone) {
      const text = line.toString("utf8");
      if (text.startsWith("@@") || text.startsWith("Binary files ") || text.startsWith("GIT binary patch")) {
        cur.headerDone = true;
        cur.binary = !text.startsWith("@@");
      } else {
        cur.header.push(text);
      }
    }
  }

  private keep(cur: OpenSection, line: Buffer): void {
    if (cur.bytes > MAX_FILE_DIFF_BYTES || this.budget.kept + line.length > this.budget.limit) {
      cur.keeping = false;
      this.budget.kept -= cur.keptBytes;
      cur.lines = [];
      return;
    }
    cur.lines.push(line);
    cur.keptBytes += line.length;
    this.budget.kept += line.length;
  }

  private finish(): void {
    const cur = this.current;
    if (!cur) return;
    this.current = undefined;
    const header = cur.header.join("");
    this.sections.push({
      header,
      path: sectionPath(cur.header),
      text: cur.keeping ? Buffer.concat(cur.lines).toString("utf8") : undefined,
      bytes: cur.bytes,
      binary: cur.binary,
      oldBlob: sectionOldBlob(cur.header),
    });
  }
}

/**
 * A one-line stub in place of a file's diff (Coder's stub hunk): the file's
 * header, `---`/`+++` lines, and one added line carrying `message`.
 */
export function stubSection(section: FileSection, message: string): string {
  let header = section.header;
  if (!/^--- /m.test(header)) {
    const [a, b] = headerNames(section.header);
    const isNew = /^new file mode /m.test(header);
    const isDeleted = /^deleted file mode /m.test(header);
    header += `--- ${isNew ? "/dev/null" : a}\n+++ ${isDeleted ? "/dev/null" : b}\n`;
  }
  return `${header}@@ -0,0 +1 @@\n+${message}\n`;
}

/** The stub text for a file diff over MAX_FILE_DIFF_BYTES. */
export function fileDiffTooLargeMessage(bytes: number): string {
  return `File diff too large to show. Diff size: ${humanizeIBytes(bytes)}`;
}

/** The stub text for a file over the read limit. */
export function fileTooLargeMessage(bytes: number): string {
  return `File too large to diff. Current size: ${humanizeIBytes(bytes)}`;
}

/** The `a/…` and `b/…` names of a `diff --git` line, as written (possibly quoted). */
function headerNames(header: string): [string, string] {
  const first = header.slice(FILE_HEADER.length, header.indexOf("\n"));
  if (first.startsWith('"')) {
    const end = quotedEnd(first, 0);
    return [first.slice(0, end), first.slice(end + 1)];
  }
  const half = (first.length - 1) / 2;
  return [first.slice(0, half), first.slice(half + 1)];
}

/** The worktree-side path of a section: from `rename to`, else `+++ b/`, else the header. */
function sectionPath(lines: string[]): string | undefined {
  for (const line of lines) {
    if (line.startsWith("rename to ")) return unquote(line.slice(10).replace(/\n$/, ""));
  }
  for (const line of lines) {
    if (line.startsWith("+++ b/") || line.startsWith('+++ "b/')) {
      return stripPrefix(unquote(line.slice(4).replace(/\t?\n$/, "")));
    }
  }
  const first = lines[0];
  if (!first) return undefined;
  const [a, b] = headerNames(first);
  return stripPrefix(unquote(b)) ?? stripPrefix(unquote(a));
}

/** The old side's object id from an `index <old>..<new>` line; undefined when absent or all zeros (a new file). */
function sectionOldBlob(lines: string[]): string | undefined {
  for (const line of lines) {
    const m = /^index ([0-9a-f]+)\.\./.exec(line);
    if (m) return /^0+$/.test(m[1]!) ? undefined : m[1];
  }
  return undefined;
}

function stripPrefix(name: string | undefined): string | undefined {
  return name?.startsWith("b/") || name?.startsWith("a/") ? name.slice(2) : undefined;
}

function quotedEnd(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === '"') return i + 1;
  }
  return s.length;
}

const C_ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, "\\": 92 };

/** Undoes git's C-style quoting of a path (`"a/tab\there"`, octal bytes for non-ASCII). */
export function unquote(name: string): string | undefined {
  if (!name.startsWith('"')) return name;
  if (!name.endsWith('"') || name.length < 2) return undefined;
  const bytes: number[] = [];
  const body = name.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== "\\") {
      bytes.push(...Buffer.from(c, "utf8"));
      continue;
    }
    const next = body[++i];
    if (next === undefined) return undefined;
    if (/[0-7]/.test(next)) {
      bytes.push(parseInt(body.slice(i, i + 3), 8));
      i += 2;
    } else if (next in C_ESCAPES) {
      bytes.push(C_ESCAPES[next]!);
    } else {
      return undefined;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}
