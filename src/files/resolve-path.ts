import fs from "node:fs/promises";
import path from "node:path";
import { goQuote } from "../process/errors.js";
import { errnoOf, notAbsolute, pathError } from "./errors.js";

/** Symlinks followed before giving up (Coder's resolvePath maxDepth, as Linux's MAXSYMLINKS). */
export const MAX_SYMLINK_DEPTH = 40;

/** A resolve that cannot finish: a symlink loop or chain deeper than MAX_SYMLINK_DEPTH. */
export class SymlinkDepthError extends Error {
  constructor(at: string) {
    super(`too many levels of symlinks resolving ${goQuote(at)}`);
    this.name = "SymlinkDepthError";
  }
}

/**
 * Resolves the symlinks of the existing part of an absolute path and keeps
 * the missing tail as written, as Coder's resolvePath does: each component
 * is lstat'ed from the full path upward, a link's target (relative to the
 * link's directory) is resolved in turn, and a missing component keeps its
 * name under its resolved parent. Throws `file path must be absolute` (a
 * FileError), SymlinkDepthError, or Go's PathError text for lstat/readlink.
 */
export async function resolvePath(p: string): Promise<string> {
  if (!path.isAbsolute(p)) throw notAbsolute(p);
  return resolve(path.resolve(p), 0);
}

async function resolve(p: string, depth: number): Promise<string> {
  if (depth > MAX_SYMLINK_DEPTH) throw new SymlinkDepthError(p);
  let isLink: boolean;
  try {
    isLink = (await fs.lstat(p)).isSymbolicLink();
  } catch (err) {
    if (errnoOf(err) !== "ENOENT") throw pathError("lstat", p, err);
    isLink = false;
  }
  if (!isLink) {
    const dir = path.dirname(p);
    if (dir === p) return p;
    return path.join(await resolve(dir, depth), path.basename(p));
  }
  let target: string;
  try {
    target = await fs.readlink(p);
  } catch (err) {
    throw pathError("readlink", p, err);
  }
  if (!path.isAbsolute(target)) target = path.join(path.dirname(p), target);
  return resolve(path.resolve(target), depth + 1);
}
