/**
 * Mutual exclusion per file path within the daemon: a write's precondition
 * check and its rename, or an edit's read, check and rename, run without
 * another write or edit of the same file in between.
 */
export class PathLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` holding the locks of every path in `paths` (taken in sorted order, so two callers cannot deadlock). */
  async with<T>(paths: readonly string[], fn: () => Promise<T>): Promise<T> {
    const keys = [...new Set(paths)].sort();
    const releases: (() => void)[] = [];
    try {
      for (const key of keys) releases.push(await this.acquire(key));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  private async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}
