import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { errnoCode } from "../errors.js";
import type { Logger } from "../log.js";
import {
  DiffCollector,
  MAX_FILE_DIFF_BYTES,
  fileDiffTooLargeMessage,
  fileTooLargeMessage,
  stubSection,
  type FileSection,
  type DiffBudget,
} from "./diff-collector.js";
import { GitUnavailableError, type GitRunner } from "./git.js";
import { humanizeIBytes } from "./humanize.js";

/** A file over this many bytes gets a size stub instead of a diff (agentgit maxFileReadSize, 2 MiB). */
export const MAX_FILE_READ_BYTES = 2 * 1024 * 1024;
/** A repo diff over this many bytes is replaced by a placeholder (agentgit maxTotalDiffSize, 3 MiB). */
export const MAX_TOTAL_DIFF_BYTES = 3 * 1024 * 1024;

/** Empty-tree object ids, the base of the diff while HEAD is unborn. */
const EMPTY_TREE: Record<string, string> = {
  sha1: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
  sha256: "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
};

/**
 * Flags of every content diff: no external diff drivers or textconv filters,
 * and files past the read limit treated as binary so git never diffs them.
 */
const DIFF_ARGS = [
  "-c",
  `core.bigFileThreshold=${MAX_FILE_READ_BYTES}`,
  "diff",
  "--no-ext-diff",
  "--no-textconv",
  "--no-color",
];

/** What one repository looks like now. */
export interface RepoState {
  repoRoot: string;
  branch: string;
  remoteOrigin: string;
  unifiedDiff: string;
}

/** The result of scanning one root. */
export type ScanOutcome =
  | { kind: "ok"; state: RepoState }
  | { kind: "removed" }
  | { kind: "error"; error: unknown }
  | { kind: "unavailable" };

/**
 * Reads repositories with the git CLI: which repo a path belongs to, and a
 * repo's branch, origin and whole-worktree diff against HEAD (tracked changes
 * plus untracked files as new files), with Coder's size limits.
 */
export class RepoScanner {
  constructor(
    private readonly git: GitRunner,
    private readonly log: Logger,
  ) {}

  /**
   * The innermost repository root holding `p` (symlinks resolved), or
   * undefined for relative paths, paths outside any repo, or when git is missing.
   */
  async resolveRoot(p: string, signal?: AbortSignal): Promise<string | undefined> {
    if (!path.isAbsolute(p)) return undefined;
    const clean = path.resolve(p);
    const dir = (await isDirectory(clean)) ? clean : path.dirname(clean);
    if (!(await isDirectory(dir))) return undefined;
    try {
      const res = await this.git.run(["rev-parse", "--show-toplevel"], { cwd: dir, signal });
      const top = res.stdout.toString("utf8").trim();
      if (res.code !== 0 || top === "") return undefined;
      return await fs.realpath(top);
    } catch (err) {
      if (!(err instanceof GitUnavailableError) && !signal?.aborted) {
        this.log.debug({ err, path: p }, "could not resolve repository root");
      }
      return undefined;
    }
  }

  /** Scans one repository root. */
  async scan(root: string, signal?: AbortSignal): Promise<ScanOutcome> {
    if (await isGone(root)) return { kind: "removed" };
    try {
      return { kind: "ok", state: await this.read(root, signal) };
    } catch (error) {
      if (error instanceof GitUnavailableError) return { kind: "unavailable" };
      if (await isGone(root)) return { kind: "removed" };
      return { kind: "error", error };
    }
  }

  private async read(root: string, signal: AbortSignal | undefined): Promise<RepoState> {
    const opts = { cwd: root, signal };
    const budget: DiffBudget = { kept: 0, limit: MAX_TOTAL_DIFF_BYTES };
    const head = this.git.run(["rev-parse", "--show-object-format", "--verify", "-q", "HEAD"], opts);
    const branch = this.git.run(["symbolic-ref", "--short", "-q", "HEAD"], opts);
    // The first of possibly several URLs, as go-git's remote config lists them.
    const origin = this.git.run(["config", "--get-all", "remote.origin.url"], opts);
    const tracked = head.then((res) => {
      const [format = "sha1", commit] = res.stdout.toString("utf8").split("\n");
      if (res.code !== 0 && res.code !== 1) throw gitFailure("rev-parse", res.code, res.stderr);
      const base = res.code === 0 && commit ? "HEAD" : (EMPTY_TREE[format] ?? EMPTY_TREE.sha1!);
      return this.diff([base], root, undefined, budget, signal);
    });
    const untracked = this.untracked(root, budget, signal);
    const [branchRes, originRes, trackedSections, untrackedSections] = await Promise.all([
      branch,
      origin,
      tracked,
      untracked,
    ]);
    if (branchRes.code > 1) throw gitFailure("symbolic-ref", branchRes.code, branchRes.stderr);
    if (originRes.code > 1) throw gitFailure("config", originRes.code, originRes.stderr);
    const sections = [...trackedSections, ...untrackedSections];
    return {
      repoRoot: root,
      branch: branchRes.code === 0 ? branchRes.stdout.toString("utf8").trim() : "",
      remoteOrigin: originRes.code === 0 ? (originRes.stdout.toString("utf8").split("\n")[0] ?? "") : "",
      unifiedDiff: await this.render(root, sections, signal),
    };
  }

  /** Untracked, non-ignored files as new-file diffs, via a throwaway index holding them intent-to-add. */
  private async untracked(root: string, budget: DiffBudget, signal: AbortSignal | undefined): Promise<FileSection[]> {
    const res = await this.git.run(["ls-files", "--others", "--exclude-standard", "-z"], { cwd: root, signal });
    if (res.code !== 0) throw gitFailure("ls-files", res.code, res.stderr);
    // A trailing slash marks an untracked nested repository, which has no file diff.
    const files = res.stdout
      .toString("utf8")
      .split("\0")
      .filter((f) => f !== "" && !f.endsWith("/"));
    if (files.length === 0) return [];
    const index = path.join(os.tmpdir(), `agentd-gitwatch-${randomBytes(8).toString("hex")}.index`);
    const env = { GIT_INDEX_FILE: index };
    try {
      const add = await this.git.run(["add", "-N", "--pathspec-from-file=-", "--pathspec-file-nul"], {
        cwd: root,
        env,
        signal,
        input: files.join("\0"),
      });
      if (add.code !== 0) throw gitFailure("add -N", add.code, add.stderr);
      return await this.diff([], root, env, budget, signal);
    } finally {
      await fs.rm(index, { force: true });
    }
  }

  private async diff(
    args: string[],
    root: string,
    env: NodeJS.ProcessEnv | undefined,
    budget: DiffBudget,
    signal: AbortSignal | undefined,
  ): Promise<FileSection[]> {
    const collector = new DiffCollector(budget);
    const res = await this.git.run([...DIFF_ARGS, ...args], {
      cwd: root,
      env,
      signal,
      onStdout: (chunk) => collector.push(chunk),
    });
    if (res.code !== 0) throw gitFailure("diff", res.code, res.stderr);
    return collector.end();
  }

  /**
   * Applies the per-file and total limits and joins the sections. git marks
   * a file over the read limit on either side as binary, so only binary
   * sections can be too large; their stub gives the worktree size (0 once deleted).
   */
  private async render(root: string, sections: FileSection[], signal: AbortSignal | undefined): Promise<string> {
    const binary = sections.filter((s) => s.binary);
    const oldSizes = await this.blobSizes(
      root,
      binary.flatMap((s) => (s.oldBlob === undefined ? [] : [s.oldBlob])),
      signal,
    );
    const texts = await Promise.all(
      sections.map(async (s) => {
        if (s.binary) {
          const size = s.path === undefined ? 0 : await fileSize(path.join(root, s.path));
          const oldSize = s.oldBlob === undefined ? 0 : (oldSizes.get(s.oldBlob) ?? 0);
          if (Math.max(size, oldSize) > MAX_FILE_READ_BYTES) return stubSection(s, fileTooLargeMessage(size));
        }
        if (s.bytes > MAX_FILE_DIFF_BYTES) return stubSection(s, fileDiffTooLargeMessage(s.bytes));
        return s.text;
      }),
    );
    let total = 0;
    let complete = true;
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i];
      if (t === undefined) complete = false;
      total += t === undefined ? sections[i]!.bytes : Buffer.byteLength(t);
    }
    if (total > MAX_TOTAL_DIFF_BYTES || !complete) {
      return `Total diff too large to show. Size: ${humanizeIBytes(total)}. Showing branch and remote only.`;
    }
    return texts.join("");
  }

  /** Sizes of the objects named by (abbreviated) ids, in one `cat-file --batch-check`; unknown ids are left out. */
  private async blobSizes(root: string, ids: string[], signal: AbortSignal | undefined): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    if (ids.length === 0) return sizes;
    const res = await this.git.run(["cat-file", "--batch-check=%(objectsize)"], {
      cwd: root,
      signal,
      input: ids.map((id) => `${id}\n`).join(""),
    });
    if (res.code !== 0) throw gitFailure("cat-file", res.code, res.stderr);
    res.stdout
      .toString("utf8")
      .split("\n")
      .forEach((line, i) => {
        const id = ids[i];
        // A missing or ambiguous id is echoed back with that word instead of a size.
        if (id !== undefined && /^\d+$/.test(line)) sizes.set(id, Number(line));
      });
    return sizes;
  }
}

function gitFailure(command: string, code: number, stderr: string): Error {
  return new Error(`git ${command} exited ${code}${stderr ? `: ${stderr}` : ""}`);
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function fileSize(p: string): Promise<number> {
  try {
    return (await fs.stat(p)).size;
  } catch {
    return 0;
  }
}

/**
 * True when the repository no longer exists: its root is missing, its `.git`
 * is missing, or `.git` is a file whose gitdir is missing. Anything else that
 * makes git fail (a corrupt HEAD, a lock) is a transient error.
 */
async function isGone(root: string): Promise<boolean> {
  try {
    const dotGit = path.join(root, ".git");
    const st = await fs.stat(dotGit);
    if (st.isDirectory()) return false;
    const content = await fs.readFile(dotGit, "utf8");
    const m = /^gitdir:\s*(.+?)\s*$/m.exec(content);
    if (!m) return true;
    await fs.stat(path.resolve(root, m[1]!));
    return false;
  } catch (err) {
    const code = errnoCode(err);
    return code === "ENOENT" || code === "ENOTDIR";
  }
}
