import fsSync from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { errnoCode, errorText, UsageError } from "./errors.js";
import type { Logger } from "./log.js";

/** Mode of the data directory: owner only (it holds sub-agent tokens and audit logs). */
export const DATA_DIR_MODE = 0o700;

/** Mode of every file agentd creates in the data directory. */
export const PRIVATE_FILE_MODE = 0o600;

/** Files SQLite keeps beside a database; it creates them with the database file's mode. */
const SQLITE_SIDE_FILES = ["-wal", "-shm", "-journal"];

/**
 * Creates the data directory if needed (0700), tightens an existing one that
 * agentd's user owns to 0700 (one warning line), and proves it is writable,
 * so a bad `--data-dir` fails at start-up with one clear line instead of later.
 */
export async function prepareDataDir(dir: string, log: Logger): Promise<void> {
  try {
    await mkdirs(dir);
    await tightenDir(dir, log);
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

/** Makes an existing directory 0700 when it is ours; warns when it is open to others and not ours. */
async function tightenDir(dir: string, log: Logger): Promise<void> {
  const stat = await fs.stat(dir);
  const mode = stat.mode & 0o777;
  if ((mode & 0o077) === 0) return;
  const was = `0${mode.toString(8)}`;
  if (typeof process.getuid === "function" && stat.uid !== process.getuid()) {
    log.warn({ dir, mode: was }, "data directory is readable by other users and not ours to change; fix its mode to 0700");
    return;
  }
  await fs.chmod(dir, DATA_DIR_MODE);
  log.warn({ dir, was, now: "0700" }, "data directory was open to other users; made it private (0700)");
}

/**
 * Creates `file` as an empty owner-only (0600) file if it does not exist and
 * makes an existing one, and SQLite's side files beside it, 0600, whatever
 * the umask: SQLite then creates its -wal and -shm files with the same mode.
 * The process umask stays as the user set it, for the files children write.
 */
export function preparePrivateDatabaseFile(file: string): void {
  fsSync.closeSync(fsSync.openSync(file, "a", PRIVATE_FILE_MODE));
  for (const f of [file, ...SQLITE_SIDE_FILES.map((suffix) => file + suffix)]) {
    try {
      fsSync.chmodSync(f, PRIVATE_FILE_MODE);
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
    }
  }
}

/**
 * `mkdir -p` that always terminates: Node's recursive mkdir spins forever on
 * paths such as /proc/x, where mkdir keeps answering ENOENT.
 */
async function mkdirs(dir: string, depth = 0): Promise<void> {
  try {
    await fs.mkdir(dir, { mode: DATA_DIR_MODE });
  } catch (err) {
    const code = errnoCode(err);
    if (code === "EEXIST" && (await fs.stat(dir)).isDirectory()) return;
    const parent = path.dirname(dir);
    if (code !== "ENOENT" || parent === dir || depth > MAX_DIR_DEPTH) throw err;
    await mkdirs(parent, depth + 1);
    await fs.mkdir(dir, { mode: DATA_DIR_MODE });
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
