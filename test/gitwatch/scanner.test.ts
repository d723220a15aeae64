import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { GitRunner } from "../../src/gitwatch/git.js";
import { RepoScanner, type RepoState, type ScanOutcome } from "../../src/gitwatch/scanner.js";
import { createLogger } from "../../src/log.js";
import { freshDirs, git, initRepo, write } from "./helpers.js";

const scanner = new RepoScanner(new GitRunner(4), createLogger("silent"));
const freshDir = freshDirs("agentd-gitwatch-");

function ok(outcome: ScanOutcome): RepoState {
  assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
  return (outcome as { state: RepoState }).state;
}

/**
 * What Coder's pipeline prints: `git diff HEAD`, then one `diff --no-index` per
 * untracked file (listed with `-z`, so every name survives), under the
 * repository's own diff configuration. `core.quotePath` is off, as in the
 * scanner: non-ASCII names stay readable instead of becoming octal escapes.
 */
function rawPipeline(root: string): string {
  const opts = { cwd: root, encoding: "utf8" as const, maxBuffer: 64 << 20 };
  let out = execFileSync("git", ["-c", "core.quotePath=false", "diff", "--no-ext-diff", "--no-textconv", "HEAD"], opts);
  const untracked = execFileSync("git", ["ls-files", "--others", "--exclude-standard", "-z"], opts)
    .split("\0")
    .filter(Boolean);
  for (const f of untracked) {
    const r = spawnSync(
      "git",
      ["-c", "core.quotePath=false", "diff", "--no-ext-diff", "--no-textconv", "--no-index", "--", "/dev/null", f],
      opts,
    );
    out += r.stdout;
  }
  return out;
}

describe("repository roots", () => {
  it("resolves a deeply nested file to its repository, with symlinks resolved", async () => {
    const base = freshDir();
    const root = initRepo(path.join(base, "repo"));
    const file = write(root, "a/b/c/deep.go", "package deep\n");
    fs.symlinkSync(root, path.join(base, "link"));
    assert.equal(await scanner.resolveRoot(file), root);
    assert.equal(await scanner.resolveRoot(path.join(base, "link", "a", "b")), root);
    assert.match(ok(await scanner.scan(root)).unifiedDiff, /a\/b\/c\/deep\.go/);
  });

  it("ignores relative paths and paths outside any repository", async () => {
    const base = freshDir();
    write(base, "plain/file.txt", "x");
    assert.equal(await scanner.resolveRoot("relative/path.txt"), undefined);
    assert.equal(await scanner.resolveRoot(path.join(base, "plain", "file.txt")), undefined);
    assert.equal(await scanner.resolveRoot(path.join(base, "missing", "deeper", "x")), undefined);
  });

  it("picks the innermost of nested repositories", async () => {
    const base = freshDir();
    const outer = initRepo(path.join(base, "outer"));
    const inner = initRepo(path.join(outer, "inner"));
    assert.equal(await scanner.resolveRoot(write(inner, "x.txt", "x")), inner);
    assert.equal(await scanner.resolveRoot(write(outer, "y.txt", "y")), outer);
  });
});

describe("repository scan", () => {
  it("reports branch, origin's first URL and staged, modified, deleted and untracked changes", async () => {
    const root = initRepo(path.join(freshDir(), "r"), { "README.md": "# Project\n", "gone.txt": "bye\n" });
    git(root, "remote", "add", "origin", "https://github.com/acme/app.git");
    git(root, "remote", "set-url", "--add", "origin", "https://mirror.example.com/app.git");
    write(root, "README.md", "# Modified\n");
    write(root, "staged.go", "package staged\n");
    git(root, "add", "staged.go");
    fs.rmSync(path.join(root, "gone.txt"));
    write(root, "new.txt", "hello\n");
    const state = ok(await scanner.scan(root));
    assert.equal(state.branch, "main");
    assert.equal(state.remoteOrigin, "https://github.com/acme/app.git");
    for (const needle of ["--- a/README.md", "+# Modified", "+package staged", "+hello", "--- a/gone.txt"]) {
      assert.ok(state.unifiedDiff.includes(needle), needle);
    }
    assert.equal(state.unifiedDiff, rawPipeline(root));
  });

  it("reports a clean repository with an empty diff, and a detached HEAD with an empty branch", async () => {
    const root = initRepo(path.join(freshDir(), "r"));
    assert.deepEqual(ok(await scanner.scan(root)), { repoRoot: root, branch: "main", remoteOrigin: "", unifiedDiff: "" });
    git(root, "checkout", "-q", "--detach");
    assert.equal(ok(await scanner.scan(root)).branch, "");
  });

  it("handles an unborn HEAD: staged and untracked files appear as new", async () => {
    const root = path.join(freshDir(), "r");
    fs.mkdirSync(root);
    git(root, "-c", "init.defaultBranch=main", "init", "-q");
    write(root, "staged.txt", "staged\n");
    git(root, "add", "staged.txt");
    write(root, "loose.txt", "loose\n");
    const state = ok(await scanner.scan(fs.realpathSync(root)));
    assert.equal(state.branch, "main");
    assert.match(state.unifiedDiff, /\+staged/);
    assert.match(state.unifiedDiff, /\+loose/);
  });

  it("respects .gitignore, including a nested negation", async () => {
    const root = initRepo(path.join(freshDir(), "r"), { ".gitignore": "*.log\nbuild/\n", "sub/.gitignore": "!keep.log\n" });
    write(root, "debug.log", "noise\n");
    write(root, "build/out.js", "noise\n");
    write(root, "sub/keep.log", "kept\n");
    write(root, "sub/drop.txt", "seen\n");
    const diff = ok(await scanner.scan(root)).unifiedDiff;
    assert.doesNotMatch(diff, /debug\.log|out\.js/);
    assert.match(diff, /sub\/keep\.log/);
    assert.match(diff, /sub\/drop\.txt/);
  });

  it("shows binary files as 'Binary files … differ' without NUL bytes", async () => {
    const root = initRepo(path.join(freshDir(), "r"), { "img.bin": "\0\x01\x02old" });
    write(root, "img.bin", Buffer.from([0, 1, 2, 3, 4]));
    write(root, "new.bin", Buffer.from([0, 9, 9]));
    const diff = ok(await scanner.scan(root)).unifiedDiff;
    assert.match(diff, /Binary files a\/img\.bin and b\/img\.bin differ/);
    assert.match(diff, /Binary files \/dev\/null and b\/new\.bin differ/);
    assert.ok(!diff.includes("\0"));
  });

  it("handles quoted and unusual file names", async () => {
    const root = initRepo(path.join(freshDir(), "r"));
    const names = ["with space.txt", 'quo"te.txt', "tab\there.txt", "ünïcode.txt", "star*.txt", ":colon.txt"];
    for (const n of names) write(root, n, `${n}\n`);
    const state = ok(await scanner.scan(root));
    assert.equal(state.unifiedDiff, rawPipeline(root));
    assert.match(state.unifiedDiff, /b\/ünïcode\.txt/);
    assert.match(state.unifiedDiff, /"b\/tab\\there\.txt"/);
    assert.match(state.unifiedDiff, /\+star\*\.txt/);
  });

  it("matches the raw pipeline for mode changes, symlinks, CRLF, missing final newlines, empty and nested untracked files", async () => {
    const root = initRepo(path.join(freshDir(), "r"), {
      "mode.sh": "echo\n",
      "crlf.txt": "a\r\nb\r\n",
      "nonl.txt": "old",
      "target.txt": "t\n",
    });
    fs.symlinkSync("target.txt", path.join(root, "link"));
    git(root, "add", "link");
    git(root, "commit", "-q", "-m", "link");
    fs.chmodSync(path.join(root, "mode.sh"), 0o755);
    write(root, "crlf.txt", "a\r\nc\r\n");
    write(root, "nonl.txt", "new");
    fs.rmSync(path.join(root, "link"));
    fs.symlinkSync("mode.sh", path.join(root, "link"));
    write(root, "empty.txt", "");
    write(root, "d1/d2/deep.txt", "deep\n");
    fs.symlinkSync("target.txt", path.join(root, "ulink"));
    write(root, "new\nline.txt", "nl");
    const diff = ok(await scanner.scan(root)).unifiedDiff;
    assert.equal(diff, rawPipeline(root));
    for (const needle of [
      "old mode 100644\nnew mode 100755\n",
      "-b\r\n+c\r\n",
      "+new\n\\ No newline at end of file\n",
      " 120000\n--- a/link\n+++ b/link\n@@ -1 +1 @@\n-target.txt\n\\ No newline at end of file\n+mode.sh\n",
      "diff --git a/empty.txt b/empty.txt\nnew file mode 100644\nindex 0000000..e69de29\n",
      "+++ b/d1/d2/deep.txt\n",
      "new file mode 120000\n",
      '+++ "b/new\\nline.txt"\n',
    ]) {
      assert.ok(diff.includes(needle), JSON.stringify(needle));
    }
  });

  it("matches the raw pipeline for a dirty submodule and leaves out an untracked nested repository", async () => {
    const base = freshDir();
    initRepo(path.join(base, "lib"), { "lib.txt": "lib\n" });
    const root = initRepo(path.join(base, "app"));
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "../lib", "lib");
    git(root, "commit", "-q", "-m", "submodule");
    write(root, "lib/lib.txt", "changed\n");
    initRepo(path.join(root, "nested"), { "inner.txt": "inner\n" });
    const diff = ok(await scanner.scan(root)).unifiedDiff;
    assert.equal(diff, rawPipeline(root));
    assert.match(diff, /^\+Subproject commit [0-9a-f]{40}-dirty$/m);
    assert.doesNotMatch(diff, /inner/);
  });

  it("follows the repository's diff.renames setting, as Coder's plain `git diff HEAD` does", async () => {
    const root = initRepo(path.join(freshDir(), "r"), { "before.txt": "same content\n".repeat(20) });
    git(root, "mv", "before.txt", "after.txt");
    const renamed = ok(await scanner.scan(root)).unifiedDiff;
    assert.equal(renamed, rawPipeline(root));
    assert.match(renamed, /^rename from before\.txt\nrename to after\.txt$/m);
    git(root, "config", "diff.renames", "false");
    const split = ok(await scanner.scan(root)).unifiedDiff;
    assert.equal(split, rawPipeline(root));
    assert.match(split, /^deleted file mode 100644$/m);
    assert.match(split, /^new file mode 100644$/m);
  });

  it("replaces a file over 2 MiB with a size stub", async () => {
    const root = initRepo(path.join(freshDir(), "r"));
    write(root, "huge.txt", "x".repeat(5 * 1024 * 1024));
    const diff = ok(await scanner.scan(root)).unifiedDiff;
    assert.match(diff, /^diff --git a\/huge\.txt b\/huge\.txt\n/);
    assert.match(diff, /\+File too large to diff\. Current size: 5\.0 MiB\n$/);
    assert.ok(diff.length < 1024);
  });

  it("replaces a file over 2 MiB only in HEAD with a stub giving the worktree size", async () => {
    const big = "x".repeat(3 * 1024 * 1024);
    const root = initRepo(path.join(freshDir(), "r"), { "shrunk.txt": big, "dropped.txt": big });
    write(root, "shrunk.txt", "small\n");
    fs.rmSync(path.join(root, "dropped.txt"));
    const diff = ok(await scanner.scan(root)).unifiedDiff;
    assert.doesNotMatch(diff, /Binary files/);
    assert.match(
      diff,
      /^diff --git a\/dropped\.txt b\/dropped\.txt\ndeleted file mode 100644\nindex [0-9a-f]+\.\.0+\n--- a\/dropped\.txt\n\+\+\+ \/dev\/null\n@@ -0,0 \+1 @@\n\+File too large to diff\. Current size: 0 B\n/,
    );
    assert.match(
      diff,
      /\ndiff --git a\/shrunk\.txt b\/shrunk\.txt\nindex [0-9a-f]+\.\.[0-9a-f]+ 100644\n--- a\/shrunk\.txt\n\+\+\+ b\/shrunk\.txt\n@@ -0,0 \+1 @@\n\+File too large to diff\. Current size: 6 B\n$/,
    );
  });

  it("replaces a file diff over 256 KiB with a size stub", async () => {
    const root = initRepo(path.join(freshDir(), "r"));
    const line = "y".repeat(99) + "\n";
    write(root, "wide.txt", line.repeat(3000));
    write(root, "small.txt", "small\n");
    const diff = ok(await scanner.scan(root)).unifiedDiff;
    assert.match(diff, /\+File diff too large to show\. Diff size: \d+ KiB\n/);
    assert.match(diff, /\+small/);
  });

  it("replaces a whole diff over 3 MiB with the placeholder, keeping branch and origin", async () => {
    const root = initRepo(path.join(freshDir(), "r"));
    git(root, "remote", "add", "origin", "git@example.com:a/b.git");
    const chunk = ("z".repeat(99) + "\n").repeat(2000);
    for (let i = 0; i < 20; i++) write(root, `f${i}.txt`, chunk);
    const state = ok(await scanner.scan(root));
    assert.match(state.unifiedDiff, /^Total diff too large to show\. Size: 3\.\d MiB\. Showing branch and remote only\.$/);
    assert.equal(state.branch, "main");
    assert.equal(state.remoteOrigin, "git@example.com:a/b.git");
  });

  it("reports a deleted repository, a deleted .git and a worktree with a deleted gitdir as removed", async () => {
    const base = freshDir();
    const gone = initRepo(path.join(base, "gone"));
    fs.rmSync(gone, { recursive: true });
    assert.equal((await scanner.scan(gone)).kind, "removed");

    const outer = initRepo(path.join(base, "outer"));
    const inner = initRepo(path.join(outer, "inner"));
    fs.rmSync(path.join(inner, ".git"), { recursive: true });
    assert.equal((await scanner.scan(inner)).kind, "removed");

    const main = initRepo(path.join(base, "main"));
    const wt = path.join(base, "wt");
    git(main, "worktree", "add", "-q", wt);
    assert.equal((await scanner.scan(fs.realpathSync(wt))).kind, "ok");
    fs.rmSync(path.join(main, ".git", "worktrees", "wt"), { recursive: true });
    assert.equal((await scanner.scan(fs.realpathSync(wt))).kind, "removed");
  });

  it("treats a corrupt HEAD as a transient error, not a removal", async () => {
    const root = initRepo(path.join(freshDir(), "r"));
    fs.writeFileSync(path.join(root, ".git", "HEAD"), "corrupt");
    assert.equal((await scanner.scan(root)).kind, "error");
  });
});

describe("without git", () => {
  it("resolves nothing and reports scans as unavailable", async () => {
    const root = initRepo(path.join(freshDir(), "r"));
    const missing = new RepoScanner(new GitRunner(1, "git-not-installed-here"), createLogger("silent"));
    assert.equal(await missing.resolveRoot(root), undefined);
    assert.equal((await missing.scan(root)).kind, "unavailable");
  });
});
