/** One file of a unified diff, with its line counts. */
export interface FileDiff {
  path: string;
  added: number;
  removed: number;
  lines: string[];
}

/** Lines rendered per file at most; a huge generated file must not freeze the page. */
export const MAX_LINES_PER_FILE = 2000;

/** Splits a `git diff` into files and counts added and removed lines. */
export function parseUnifiedDiff(diff: string): FileDiff[] {
  const files: FileDiff[] = [];
  let file: FileDiff | undefined;
  for (const line of diff.split("\n")) {
    if (line.startsWith("diff --git ")) {
      const m = / b\/(.*)$/.exec(line);
      file = { path: m?.[1] ?? line.slice(11), added: 0, removed: 0, lines: [] };
      files.push(file);
    }
    if (!file) continue;
    if (line.startsWith("+") && !line.startsWith("+++ ")) file.added++;
    else if (line.startsWith("-") && !line.startsWith("--- ")) file.removed++;
    file.lines.push(line);
  }
  return files;
}

/** The class of a diff line: syntax-neutral, only what the line does. */
export function lineKind(line: string): "add" | "del" | "hunk" | "meta" | "ctx" {
  if (line.startsWith("+++ ") || line.startsWith("--- ") || line.startsWith("diff --git") || line.startsWith("index ")) {
    return "meta";
  }
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  return "ctx";
}
