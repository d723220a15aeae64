import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { GitRunner } from "./git.js";

/**
 * Dirty paths whose size, mtime and mode enter the fingerprint; past it an
 * edit to an already dirty file is left to the file-system watch or a refresh.
 */
export const MAX_FINGERPRINT_STATS = 4096;
/** lstat calls in flight at once while fingerprinting. */
const STAT_CONCURRENCY = 64;

/**
 * A cheap digest of everything a repository's `changes` entry depends on,
 * as Coder's newer agentgit takes it before deciding to rescan:
 * `git status --porcelain=v1 -z --untracked-files=all`, `git diff --cached
 * --raw -z`, and the size, mtime and mode of every dirty path (an edit to
 * an already modified file changes none of git's output). HEAD and the
 * config file are added so a branch switch or a new origin on a clean tree
 * counts too. Every git child runs with GIT_OPTIONAL_LOCKS=0 (GitRunner's
 * environment), so checking never rewrites the index.
 */
export async function repoFingerprint(git: GitRunner, root: string, signal?: AbortSignal): Promise<string> {
  const opts = { cwd: root, signal };
  const [status, cached] = await Promise.all([
    git.run(["status", "--porcelain=v1", "-z", "--untracked-files=all"], opts),
    git.run(["diff", "--cached", "--raw", "-z", "--no-ext-diff"], opts),
  ]);
  if (status.code !== 0) throw new Error(`git status exited ${status.code}: ${status.stderr}`);
  if (cached.code !== 0) throw new Error(`git diff --cached exited ${cached.code}: ${cached.stderr}`);
  const hash = createHash("sha256");
  hash.update(status.stdout).update("\0\0").update(cached.stdout).update("\0\0");
  const stats = await statAll(root, dirtyPaths(status.stdout).slice(0, MAX_FINGERPRINT_STATS));
  hash.update(stats.join("\0"));
  hash.update("\0\0").update(await headIdentity(root));
  return hash.digest("hex");
}

/** The paths named by `git status --porcelain=v1 -z` (both sides of a rename or copy). */
export function dirtyPaths(out: Buffer): string[] {
  const tokens = out.toString("utf8").split("\0");
  const paths: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const entry = tokens[i]!;
    if (entry.length < 4) continue;
    paths.push(entry.slice(3));
    // A rename or copy entry is followed by its source path as a token of its own.
    if (/[RC]/.test(entry.slice(0, 2))) {
      const from = tokens[++i];
      if (from) paths.push(from);
    }
  }
  return paths;
}

async function statAll(root: string, paths: string[]): Promise<string[]> {
  const out: string[] = new Array<string>(paths.length);
  for (let i = 0; i < paths.length; i += STAT_CONCURRENCY) {
    const batch = paths.slice(i, i + STAT_CONCURRENCY);
    const lines = await Promise.all(batch.map((p) => statLine(path.join(root, p))));
    lines.forEach((line, j) => (out[i + j] = line));
  }
  return out;
}

async function statLine(p: string): Promise<string> {
  try {
    const st = await fs.lstat(p, { bigint: true });
    return `${st.size}:${st.mtimeNs}:${st.mode}`;
  } catch {
    return "-";
  }
}

/**
 * HEAD's text and the config file's size and mtime, read from the git
 * directory (`.git`, or the directory a `.git` file points to, whose
 * `commondir` holds the shared config of a linked worktree).
 */
async function headIdentity(root: string): Promise<string> {
  try {
    const gitDir = await resolveGitDir(root);
    const head = await fs.readFile(path.join(gitDir, "HEAD"), "utf8");
    const common = await fs
      .readFile(path.join(gitDir, "commondir"), "utf8")
      .then((c) => path.resolve(gitDir, c.trim()))
      .catch(() => gitDir);
    return `${head}\0${await statLine(path.join(common, "config"))}`;
  } catch {
    return "-";
  }
}

async function resolveGitDir(root: string): Promise<string> {
  const dotGit = path.join(root, ".git");
  const st = await fs.stat(dotGit);
  if (st.isDirectory()) return dotGit;
  const m = /^gitdir:\s*(.+?)\s*$/m.exec(await fs.readFile(dotGit, "utf8"));
  if (!m) throw new Error(".git file names no gitdir");
  return path.resolve(root, m[1]!);
}
