import { lineKind, MAX_LINES_PER_FILE, type FileDiff } from "./diff.js";

/** One file's diff: additions, deletions and hunk headers marked, no language highlighting. */
export function DiffView({ file }: { file: FileDiff }) {
  const shown = file.lines.slice(0, MAX_LINES_PER_FILE);
  return (
    <pre class="diff" tabIndex={0} aria-label={`Diff of ${file.path}`}>
      {shown.map((line, i) => (
        <span key={i} class={`line ${lineKind(line)}`}>
          {line || " "}
          {"\n"}
        </span>
      ))}
      {file.lines.length > shown.length && (
        <span class="truncation">… {file.lines.length - shown.length} more lines not shown …</span>
      )}
    </pre>
  );
}
