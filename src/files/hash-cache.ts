import type { Stats } from "node:fs";

/** Files whose sha256 is remembered (a few hundred bytes each). */
const MAX_ENTRIES = 4096;
/**
 * A hash is trusted again only for a file last modified this long before it
 * was hashed, so a change within the file system's timestamp granularity
 * cannot hide behind an unchanged mtime (git's "racily clean" rule).
 */
const RACY_WINDOW_MS = 2000;

/** The identity of a file's content as stat sees it. */
function keyOf(stat: Stats): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/**
 * Remembers the sha256 of files by device, inode, size, mtime and ctime, so
 * reading an unchanged file again (ETag) or checking a precondition does not
 * hash it again. Any write changes ctime; agentd's own writes also change
 * the inode.
 */
export class HashCache {
  private readonly entries = new Map<string, string>();

  /** The remembered hash of the file `stat` describes, if any. */
  get(stat: Stats): string | undefined {
    const key = keyOf(stat);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  /** Remembers `sha256` for the file `stat` describes, hashed starting at `hashedAt` (ms). */
  set(stat: Stats, sha256: string, hashedAt: number): void {
    if (stat.mtimeMs > hashedAt - RACY_WINDOW_MS || stat.ctimeMs > hashedAt - RACY_WINDOW_MS) return;
    this.entries.set(keyOf(stat), sha256);
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }
}
