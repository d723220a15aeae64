import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../log.js";

/** Paths kept per chat; past it the oldest path of that chat is dropped. */
export const MAX_PATHS_PER_CHAT = 1_000;
/** Chats kept in total; past it the least recently updated chat is dropped. */
export const MAX_CHATS = 256;
/** Writes to disk are batched this long after a change. */
const PERSIST_DEBOUNCE_MS = 200;
/** File in the data directory that holds the tracked paths. */
export const PATH_STORE_FILE = "gitwatch-paths.json";
/** Layout version of PATH_STORE_FILE. */
const FILE_VERSION = 1;

const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/** Why an entry was dropped to stay within bounds. */
export type EvictionReason = "paths_per_chat" | "chats";

/** Options for a PathStore. */
export interface PathStoreOptions {
  /** Where to persist; undefined keeps paths in memory only. */
  dataDir: string | undefined;
  log: Logger;
  /** Called whenever a bound drops an entry. */
  onEvict?: (reason: EvictionReason) => void;
}

/**
 * Chat id → tracked file paths, the source of what git watchers look at
 * (Coder's agentgit PathStore). Every add goes to the chat and all its
 * ancestors, so a parent chat's watcher sees a sub-agent's edits. Unlike
 * Coder's, the paths survive a restart: they are written atomically to the
 * data directory, debounced.
 */
export class PathStore {
  private readonly chats = new Map<string, Set<string>>();
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  private persistTimer: NodeJS.Timeout | undefined;
  private dirty = false;
  private writing: Promise<void> = Promise.resolve();
  private readonly file: string | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: PathStoreOptions) {
    this.log = opts.log;
    this.file = opts.dataDir ? path.join(opts.dataDir, PATH_STORE_FILE) : undefined;
  }

  /** Loads persisted paths; a missing or unreadable file means an empty store. */
  load(): void {
    if (!this.file) return;
    let raw: string;
    try {
      raw = fs.readFileSync(this.file, "utf8");
    } catch {
      return;
    }
    try {
      const parsed = JSON.parse(raw) as { version?: number; chats?: Record<string, unknown> };
      if (parsed.version !== FILE_VERSION || typeof parsed.chats !== "object" || parsed.chats === null) return;
      for (const [id, paths] of Object.entries(parsed.chats)) {
        if (!Array.isArray(paths)) continue;
        this.addToChat(
          id,
          paths.filter((p): p is string => typeof p === "string"),
        );
      }
      this.log.info({ chats: this.chats.size }, "loaded tracked paths");
    } catch (err) {
      this.log.warn({ err, file: this.file }, "ignoring unreadable tracked-paths file");
    }
  }

  /** Adds `paths` to every chat in `ids` (the nil UUID is skipped), then notifies them. */
  addPaths(ids: string[], paths: string[]): void {
    const targets = ids.filter((id) => id !== "" && id !== NIL_UUID);
    if (targets.length === 0) return;
    for (const id of targets) this.addToChat(id, paths);
    this.schedulePersist();
    this.notify(targets);
  }

  /** Wakes the subscribers of every chat in `ids` without changing paths. */
  notify(ids: string[]): void {
    for (const id of ids) {
      for (const sub of this.subscribers.get(id) ?? []) sub.signal();
    }
  }

  /** Every chat with tracked paths, sorted. */
  chatIds(): string[] {
    return [...this.chats.keys()].sort();
  }

  /** The chat's paths, deduplicated and sorted. */
  getPaths(id: string): string[] {
    return [...(this.chats.get(id) ?? [])].sort();
  }

  /**
   * Calls `listener` after notifications for one chat; a burst of
   * notifications before it runs becomes one call. Returns the unsubscribe.
   */
  subscribe(id: string, listener: () => void): () => void {
    const sub = new Subscriber(listener, () => {
      const set = this.subscribers.get(id);
      set?.delete(sub);
      if (set?.size === 0) this.subscribers.delete(id);
    });
    let set = this.subscribers.get(id);
    if (!set) this.subscribers.set(id, (set = new Set()));
    set.add(sub);
    return () => sub.close();
  }

  /** Writes any pending change now (used at shutdown). */
  async flush(): Promise<void> {
    if (!this.persistTimer && !this.dirty) return this.writing;
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    this.dirty = true;
    await this.persist();
  }

  private addToChat(id: string, paths: string[]): void {
    let set = this.chats.get(id);
    if (set) {
      // Re-inserting keeps the map ordered by last update, oldest first.
      this.chats.delete(id);
    } else {
      set = new Set();
      if (this.chats.size >= MAX_CHATS) this.evictOldestChat();
    }
    this.chats.set(id, set);
    for (const p of paths) {
      if (set.has(p)) continue;
      if (set.size >= MAX_PATHS_PER_CHAT) {
        set.delete(set.values().next().value!);
        this.opts.onEvict?.("paths_per_chat");
      }
      set.add(p);
    }
  }

  private evictOldestChat(): void {
    const oldest = this.chats.keys().next().value;
    if (oldest === undefined) return;
    this.chats.delete(oldest);
    this.opts.onEvict?.("chats");
    this.log.warn({ chatId: oldest, maxChats: MAX_CHATS }, "tracked-path chat limit reached; dropped the oldest chat");
  }

  private schedulePersist(): void {
    this.dirty = true;
    if (!this.file || this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      void this.persist();
    }, PERSIST_DEBOUNCE_MS);
    this.persistTimer.unref();
  }

  /** One write at a time; changes made during a write are written after it. */
  private async persist(): Promise<void> {
    await this.writing;
    if (!this.file || !this.dirty) return;
    this.dirty = false;
    const file = this.file;
    const chats: Record<string, string[]> = {};
    for (const [id, set] of this.chats) chats[id] = [...set];
    const body = JSON.stringify({ version: FILE_VERSION, chats });
    const tmp = `${file}.${process.pid}.tmp`;
    this.writing = fsp
      .writeFile(tmp, body, { mode: 0o600 })
      .then(() => fsp.rename(tmp, file))
      .catch((err: unknown) => this.log.error({ err, file }, "could not persist tracked paths"));
    await this.writing;
  }
}

/** A 1-slot, non-blocking notification slot: signals while one is pending coalesce. */
class Subscriber {
  private pending = false;
  private closed = false;

  constructor(
    private readonly listener: () => void,
    private readonly onClose: () => void,
  ) {}

  signal(): void {
    if (this.closed || this.pending) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      if (!this.closed) this.listener();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }
}
