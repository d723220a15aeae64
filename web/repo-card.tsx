import { useState } from "preact/hooks";
import type { RepoChanges } from "../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import { parseUnifiedDiff } from "./diff.js";
import { DiffView } from "./diff-view.js";

/** One repository: branch, origin, changed files with +/- counts, and the selected file's diff. */
export function RepoCard({ repo }: { repo: RepoChanges }) {
  const files = parseUnifiedDiff(repo.unifiedDiff);
  const [open, setOpen] = useState<string | undefined>(undefined);
  const current = files.find((f) => f.path === open) ?? files[0];
  return (
    <article class="repo" aria-label={repo.repoRoot}>
      <header>
        <h3>
          <code>{repo.repoRoot}</code>
        </h3>
        <div class="sub">
          branch <strong>{repo.branch || "(detached)"}</strong>
          {repo.remoteOrigin && <> · origin {repo.remoteOrigin}</>}
        </div>
      </header>
      {files.length === 0 ? (
        <p class="state empty">No uncommitted changes.</p>
      ) : (
        <div class="repo-body">
          <ul class="files" aria-label="Changed files">
            {files.map((f) => (
              <li key={f.path}>
                <button type="button" aria-pressed={f === current} onClick={() => setOpen(f.path)}>
                  <span class="path">{f.path}</span>
                  <span class="add">+{f.added}</span> <span class="del">−{f.removed}</span>
                </button>
              </li>
            ))}
          </ul>
          {current && <DiffView file={current} />}
        </div>
      )}
    </article>
  );
}
