// Writes dist/build-info.json: the package version and the git commit the
// build came from ("unknown" outside a git checkout, e.g. from a tarball).
import { execFileSync } from "node:child_process";
import fs from "node:fs";

function commit() {
  try {
    const sha = execFileSync("git", ["rev-parse", "--short", "HEAD"], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return "unknown";
  }
}

const { version } = JSON.parse(fs.readFileSync("package.json", "utf8"));
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/build-info.json", JSON.stringify({ version, commit: commit() }) + "\n");
