import fs from "node:fs/promises";
import path from "node:path";
import { errnoCode, errorText, UsageError } from "./errors.js";

/**
 * Creates the data directory if needed and proves it is writable, so a bad
 * `--data-dir` fails at start-up with one clear line instead of later.
 */
export async function prepareDataDir(dir: string): Promise<void> {
  try {
    await mkdirs(dir);
    const probe = path.join(dir, `.write-probe-${process.pid}`);
    await fs.writeFile(probe, "");
    await fs.rm(probe, { force: true });
  } catch (err) {
    const code = errnoCode(err);
    const why =
      code === "EACCES" || code === "EPERM" || code === "EROFS"
        ? "is not writable"
        : code === "ENOTDIR" || code === "EEXIST"
          ? "is not a directory"
          : `cannot be used (${errorText(err)})`;
    throw new UsageError("--data-dir", `${dir} ${why}`);
  }
}

/**
 * `mkdir -p` that always terminates: Node's recursive mkdir spins forever on
 * paths such as /proc/x, where mkdir keeps answering ENOENT.
 */
async function mkdirs(dir: string, depth = 0): Promise<void> {
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = errnoCode(err);
    if (code === "EEXIST" && (await fs.stat(dir)).isDirectory()) return;
    const parent = path.dirname(dir);
    if (code !== "ENOENT" || parent === dir || depth > MAX_DIR_DEPTH) throw err;
    await mkdirs(parent, depth + 1);
    await fs.mkdir(dir, { mode: 0o700 });
  }
}

/** Deepest chain of missing parents `mkdirs` creates. */
const MAX_DIR_DEPTH = 64;

/** Mode of agentd's runtime directory: its sockets are for this user only. */
const RUNTIME_DIR_MODE = 0o700;

/**
 * Creates agentd's default runtime directory (0700) when a socket (keyed by
 * its flag) is to live there; a path the user chose elsewhere is left to its
 * part to check.
 */
export async function prepareRuntimeDir(dir: string, sockets: Record<string, string>): Promise<void> {
  const flag = Object.keys(sockets).find((f) => path.dirname(sockets[f]!) === dir);
  if (!flag) return;
  try {
    await fs.mkdir(dir, { recursive: true, mode: RUNTIME_DIR_MODE });
  } catch (err) {
    throw new UsageError(flag, `cannot create directory ${dir}: ${errorText(err)}`);
  }
}
