import { createHash } from "node:crypto";
import type { Stats } from "node:fs";
import fs, { type FileHandle } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ChatScope } from "../http/chat.js";
import type { Logger } from "../log.js";
import { atomicWrite, type WriteSource } from "./atomic-write.js";
import { applyEdits, EditError, unifiedDiff, type MatchPass } from "./edit-engine.js";
import { errnoOf, FileError, goQuote, notAbsolute, nulInPath, pathError, statusOf } from "./errors.js";
import type { FilesMetrics } from "./metrics.js";
import { contentTypeOf } from "./mime.js";
import { HashCache } from "./hash-cache.js";
import { PathLocks } from "./path-lock.js";
import { FileRangeReader, READ_CHUNK_BYTES } from "./range-reader.js";
import { linesError, numberLines, type LineLimits, type LinesResponse } from "./read-lines.js";
import type { EditFilesRequest, FileEditsEntry, ListDirectoryRequest } from "./requests.js";
import { resolvePath } from "./resolve-path.js";

/** Directories new parents are created with (Coder's MkdirAll(dir, 0755)). */
const NEW_DIR_MODE = 0o755;

/** What the files part needs from the agent. */
export interface FilesOptions {
  log: Logger;
  metrics: FilesMetrics;
  /** Largest write-file body; whole-file reads up to this size also get their sha256. */
  maxWriteBytes: number;
  /** Called after a successful write or edit in a chat: git watch tracks `paths` for the chat ids. */
  onPathsChanged: (chatIds: string[], paths: string[]) => void;
}

/** A byte range of a file, ready to stream. */
export interface FileRange {
  /** Bytes the stream yields (Content-Length). */
  length: number;
  contentType: string;
  /** sha256 hex of the whole file, for whole-file reads of files up to maxWriteBytes. */
  sha256: string | undefined;
  /** The bytes, to be read once; owns the file handle. */
  reader: FileRangeReader;
}

/** One file's diff in an edit-files answer. */
export interface FileDiff {
  path: string;
  diff: string;
}

/** workspacesdk.LSFile. */
export interface DirectoryEntry {
  name: string;
  absolute_path_string: string;
  is_dir: boolean;
}

/** workspacesdk.LSResponse. */
export interface DirectoryListing {
  absolute_path: string[];
  absolute_path_string: string;
  contents: DirectoryEntry[];
}

/** The caller's precondition on a file's content: its sha256, or "*" for "exists". */
export type Precondition = string | undefined;

/** An edit-files entry after merging, with its resolved path. */
interface EditTarget {
  entry: FileEditsEntry;
  resolved: string | undefined;
  resolveError: unknown;
}

/** A file whose edits applied in memory, waiting to be written. */
interface PendingEdit {
  target: EditTarget;
  before: Buffer;
  after: Buffer;
  mode: number;
  passes: MatchPass[];
}

/** A failure of one file in phase 1. */
interface EditFailure {
  status: number;
  message: string;
  currentSha256?: string;
}

/** Hex sha256 of `data`, as ETag, If-Match and `current_sha256` carry it. */
export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Throws Coder's 400 for a relative path, and agentd's for a NUL byte. */
function checkPath(p: string): void {
  if (!path.isAbsolute(p)) throw notAbsolute(p);
  if (p.includes("\0")) throw nulInPath(p);
}

async function openFile(p: string): Promise<FileHandle> {
  try {
    return await fs.open(p, "r");
  } catch (err) {
    throw new FileError(statusOf(err), pathError("open", p, err).message);
  }
}

/** Reads up to `size` bytes from the start of an open file (fewer if it shrank). */
async function readUpTo(fh: FileHandle, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** The whole file: one read when it still has its stat'ed size (no chunks to join), else Node's readFile. */
async function readWhole(fh: FileHandle, size: number): Promise<Buffer> {
  const data = await readUpTo(fh, size + 1);
  return data.length <= size ? data : fh.readFile();
}

async function hashFile(fh: FileHandle, size: number): Promise<string> {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES * 4, Math.max(size, 1)));
  for (let pos = 0; ; ) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest("hex");
}

/** The precondition's failure text, or undefined when `current` satisfies it. */
function preconditionFailure(p: string, expected: string, current: string | undefined): string | undefined {
  if (current === undefined) return `file ${goQuote(p)} does not exist, so it cannot have sha256 ${expected}`;
  if (expected === "*" || expected.toLowerCase() === current) return undefined;
  return `file ${goQuote(p)} changed since it was read: its sha256 is ${current}, not ${expected}`;
}

/**
 * The files API, written once for the JSON routes and the Connect service:
 * read (streamed), read lines, write (streamed, atomic), edit (all files
 * checked before any is written), list a directory, resolve a path. Every
 * expected failure is a FileError carrying Coder's status and text.
 */
export class Files {
  private readonly locks = new PathLocks();
  private readonly hashes = new HashCache();

  constructor(private readonly opts: FilesOptions) {}

  /** The largest write-file body. */
  get maxWriteBytes(): number {
    return this.opts.maxWriteBytes;
  }

  /** Opens `[offset, offset+limit)` of a file (limit 0: to the end) for streaming, as Coder's read-file. */
  async readFile(p: string, offset: number, limit: number): Promise<FileRange> {
    checkPath(p);
    const fh = await openFile(p);
    try {
      const stat = await fh.stat().catch((err: unknown) => {
        throw new FileError(500, pathError("stat", p, err).message);
      });
      if (stat.isDirectory()) throw new FileError(400, `open ${p}: not a file`);
      const size = stat.size;
      const length = Math.min(Math.max(size - offset, 0), limit === 0 ? size : limit);
      const whole = offset === 0 && length === size && size <= this.opts.maxWriteBytes;
      const digest = whole ? await this.hashOf(fh, stat) : undefined;
      const reader = new FileRangeReader(fh, offset, length, (n) => this.opts.metrics.readBytes.inc(n));
      return { length, contentType: contentTypeOf(p), sha256: digest, reader };
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Coder's read-file-lines: semantic failures are answered, not thrown.
   * Reads at most the stat'ed size, and nothing when it is over max_file_size.
   */
  async readFileLines(
    p: string,
    offset: number,
    limit: number,
    limits: LineLimits,
  ): Promise<{ response: LinesResponse; sha256: string | undefined }> {
    const fail = (error: string) => ({ response: linesError(error), sha256: undefined });
    if (!path.isAbsolute(p)) return fail(`file path must be absolute: ${goQuote(p)}`);
    if (p.includes("\0")) return fail(nulInPath(p).message);
    let fh: FileHandle;
    try {
      fh = await fs.open(p, "r");
    } catch (err) {
      const code = errnoOf(err);
      if (code === "ENOENT") return fail(`file does not exist: ${p}`);
      if (code === "EACCES" || code === "EPERM") return fail(`permission denied: ${p}`);
      return fail(`open file: ${pathError("open", p, err).message}`);
    }
    try {
      let stat: Stats;
      try {
        stat = await fh.stat();
      } catch (err) {
        return fail(`stat file: ${pathError("stat", p, err).message}`);
      }
      if (stat.isDirectory()) return fail(`not a file: ${p}`);
      const size = stat.size;
      if (size > limits.maxFileSize) {
        return fail(
          `file is ${size} bytes which exceeds the maximum of ${limits.maxFileSize} bytes. Use grep, sed, or awk to extract the content you need, or use offset and limit to read a portion.`,
        );
      }
      let data: Buffer;
      try {
        data = await readUpTo(fh, size);
      } catch (err) {
        return fail(`read file: ${pathError("read", p, err).message}`);
      }
      this.opts.metrics.readBytes.inc(data.length);
      let digest = this.hashes.get(stat);
      if (digest === undefined) {
        const hashedAt = Date.now();
        digest = sha256(data);
        this.hashes.set(stat, digest, hashedAt);
      }
      return { response: numberLines(data, size, offset, limit, limits), sha256: digest };
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * Coder's write-file: symlinks of the existing prefix resolved, parents
   * created, the body streamed into a temp file (at most maxWriteBytes) and
   * renamed over the target, its mode kept. With `ifMatch` the rename
   * happens only if the file still has that sha256 (412 otherwise).
   */
  async writeFile(p: string, source: WriteSource, ifMatch: Precondition, scope: ChatScope): Promise<void> {
    checkPath(p);
    const resolved = await this.resolveForWrite(p);
    try {
      await fs.mkdir(path.dirname(resolved), { recursive: true, mode: NEW_DIR_MODE });
    } catch (err) {
      const code = errnoOf(err);
      const status = code === "EACCES" || code === "EPERM" ? 403 : code === "ENOTDIR" ? 400 : 500;
      throw new FileError(status, pathError("mkdir", mkdirFailurePath(err, resolved), err).message);
    }
    const mode = await this.existingMode(resolved);
    const written = await this.locks.with([resolved], () =>
      atomicWrite(resolved, source, {
        mode,
        maxBytes: this.opts.maxWriteBytes,
        log: this.opts.log,
        beforeRename: ifMatch === undefined ? undefined : () => this.checkPrecondition(p, resolved, ifMatch),
      }),
    );
    this.opts.metrics.writtenBytes.inc(written);
    this.trackPaths(scope, [p]);
  }

  /**
   * Coder's edit-files: entries naming one real file are merged (same
   * caller path) or refused (aliases); every file is read and edited in
   * memory first, and nothing is written unless all succeed (errors joined,
   * highest status wins); then each file is replaced atomically.
   */
  async editFiles(req: EditFilesRequest, scope: ChatScope): Promise<{ files?: FileDiff[] }> {
    if (req.files.length === 0) throw new FileError(400, "must specify at least one file");
    const targets = await this.mergeEntries(req.files);
    const keys = targets.map((t) => t.resolved ?? t.entry.path);
    const diffs = await this.locks.with(keys, async () => {
      const pending = await this.prepareEdits(targets);
      for (const edit of pending) {
        const written = await atomicWrite(edit.target.resolved!, edit.after, {
          mode: edit.mode,
          maxBytes: Number.POSITIVE_INFINITY,
          log: this.opts.log,
        });
        this.opts.metrics.writtenBytes.inc(written);
        this.opts.metrics.countPasses(edit.passes);
      }
      return req.includeDiff ? pending.map((edit) => ({ path: edit.target.entry.path, diff: this.diff(edit) })) : undefined;
    });
    this.trackPaths(
      scope,
      targets.map((t) => t.entry.path),
    );
    return diffs ? { files: diffs } : {};
  }

  /** Coder's list-directory (LS): an absolute `queryPath`, else `req` relative to root or home. */
  async listDirectory(queryPath: string, req: ListDirectoryRequest): Promise<DirectoryListing> {
    let abs = queryPath;
    if (abs !== "") {
      if (!path.isAbsolute(abs)) throw new FileError(500, `path must be absolute: ${goQuote(abs)}`);
    } else {
      let base: string;
      if (req.relativity === "home") base = os.homedir();
      else if (req.relativity === "root") base = "/";
      else throw new FileError(500, `unsupported relativity type ${goQuote(req.relativity)}`);
      abs = path.resolve(path.join(base, ...req.path.filter((s) => s !== "")));
    }
    if (abs.includes("\0")) throw new FileError(400, nulInPath(abs).message);
    let fh: FileHandle;
    try {
      fh = await fs.open(abs, "r");
    } catch (err) {
      throw new FileError(statusOf(err), `failed to open directory ${goQuote(abs)}: ${pathError("open", abs, err).message}`);
    }
    try {
      const stat = await fh.stat().catch((err: unknown) => {
        throw new FileError(statusOf(err), `failed to stat directory ${goQuote(abs)}: ${pathError("stat", abs, err).message}`);
      });
      if (!stat.isDirectory()) throw new FileError(500, `path ${goQuote(abs)} is not a directory`);
    } finally {
      await fh.close().catch(() => undefined);
    }
    const entries = await fs.readdir(abs, { withFileTypes: true }).catch(() => []);
    const contents = entries.map((e) => ({ name: e.name, absolute_path_string: path.join(abs, e.name), is_dir: e.isDirectory() }));
    contents.sort((a, b) => (a.is_dir !== b.is_dir ? (a.is_dir ? -1 : 1) : Buffer.compare(Buffer.from(a.name), Buffer.from(b.name))));
    return { absolute_path: abs.split("/").filter((s) => s !== ""), absolute_path_string: abs, contents };
  }

  /** Coder's resolve-path: 400 when not absolute, 403 on a permission error, else 500 with the error text. */
  async resolvePath(p: string): Promise<string> {
    checkPath(p);
    try {
      return await resolvePath(p);
    } catch (err) {
      if (err instanceof FileError) throw err;
      throw new FileError(statusOf(err) === 403 ? 403 : 500, err instanceof Error ? err.message : String(err));
    }
  }

  private async resolveForWrite(p: string): Promise<string> {
    try {
      return await resolvePath(p);
    } catch (err) {
      throw new FileError(500, `resolve symlink ${goQuote(p)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The mode of an existing target (kept on the new file); 400 when it is a directory. */
  private async existingMode(resolved: string): Promise<number | undefined> {
    try {
      const stat = await fs.stat(resolved);
      if (stat.isDirectory()) throw new FileError(400, `open ${resolved}: is a directory`);
      return stat.mode;
    } catch (err) {
      if (err instanceof FileError) throw err;
      return undefined;
    }
  }

  private async currentSha256(resolved: string): Promise<string | undefined> {
    let fh: FileHandle;
    try {
      fh = await fs.open(resolved, "r");
    } catch {
      return undefined;
    }
    try {
      return await this.hashOf(fh, await fh.stat());
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** The sha256 of an open file, remembered while the file is unchanged. */
  private async hashOf(fh: FileHandle, stat: Stats): Promise<string> {
    const cached = this.hashes.get(stat);
    if (cached !== undefined) return cached;
    const hashedAt = Date.now();
    const digest = await hashFile(fh, stat.size);
    this.opts.metrics.readBytes.inc(stat.size);
    this.hashes.set(stat, digest, hashedAt);
    return digest;
  }

  private async checkPrecondition(p: string, resolved: string, expected: string): Promise<void> {
    const current = await this.currentSha256(resolved);
    const failure = preconditionFailure(p, expected, current);
    if (failure) throw new FileError(412, failure, current ?? "");
  }

  /**
   * Coder's duplicate rule: entries whose paths resolve to one file are
   * merged when the cleaned caller paths are equal, else refused as aliases.
   */
  private async mergeEntries(entries: FileEditsEntry[]): Promise<EditTarget[]> {
    const targets: EditTarget[] = [];
    const byKey = new Map<string, EditTarget>();
    for (const entry of entries) {
      let resolved: string | undefined;
      let resolveError: unknown;
      try {
        checkPath(entry.path);
        resolved = await resolvePath(entry.path);
      } catch (err) {
        resolveError = err;
      }
      const key = resolved ?? entry.path;
      const first = byKey.get(key);
      if (!first) {
        const target = { entry: { ...entry, edits: [...entry.edits] }, resolved, resolveError };
        byKey.set(key, target);
        targets.push(target);
        continue;
      }
      if (path.normalize(first.entry.path) !== path.normalize(entry.path)) {
        throw new FileError(
          400,
          `duplicate file path ${goQuote(entry.path)} aliases ${goQuote(first.entry.path)} (same real file): combine edits into a single entry's "edits" list`,
        );
      }
      first.entry.edits.push(...entry.edits);
      if (first.entry.expectedSha256 === "") first.entry.expectedSha256 = entry.expectedSha256;
    }
    return targets;
  }

  /** Phase 1: every file checked, read and edited in memory; throws the joined failures. */
  private async prepareEdits(targets: EditTarget[]): Promise<PendingEdit[]> {
    const pending: PendingEdit[] = [];
    const failures: EditFailure[] = [];
    for (const target of targets) {
      const result = await this.prepareEdit(target);
      if ("status" in result) failures.push(result);
      else pending.push(result);
    }
    if (failures.length === 0) return pending;
    const status = Math.max(...failures.map((f) => f.status));
    const precondition = failures.find((f) => f.currentSha256 !== undefined);
    throw new FileError(status, failures.map((f) => f.message).join("\n"), status === 412 ? precondition?.currentSha256 : undefined);
  }

  private async prepareEdit(target: EditTarget): Promise<PendingEdit | EditFailure> {
    const { entry } = target;
    if (entry.path === "") return { status: 400, message: '"path" is required' };
    if (!path.isAbsolute(entry.path)) return { status: 400, message: notAbsolute(entry.path).message };
    if (entry.path.includes("\0")) return { status: 400, message: nulInPath(entry.path).message };
    if (entry.edits.length === 0) return { status: 400, message: "must specify at least one edit" };
    if (target.resolved === undefined) {
      const err = target.resolveError;
      return { status: 500, message: `resolve symlink ${goQuote(entry.path)}: ${err instanceof Error ? err.message : String(err)}` };
    }
    const resolved = target.resolved;
    let before: Buffer;
    let mode: number;
    try {
      ({ before, mode } = await this.readForEdit(resolved));
    } catch (err) {
      if (err instanceof FileError) return { status: err.status, message: err.message };
      throw err;
    }
    this.opts.metrics.readBytes.inc(before.length);
    if (entry.expectedSha256 !== "") {
      const current = sha256(before);
      const failure = preconditionFailure(entry.path, entry.expectedSha256, current);
      if (failure) return { status: 412, message: failure, currentSha256: current };
    }
    try {
      const { content, passes } = applyEdits(before, entry.edits);
      return { target, before, after: content, mode, passes };
    } catch (err) {
      if (err instanceof EditError) return { status: 400, message: `edit ${resolved}: ${err.message}` };
      throw err;
    }
  }

  private async readForEdit(resolved: string): Promise<{ before: Buffer; mode: number }> {
    const fh = await openFile(resolved);
    try {
      const stat = await fh.stat().catch((err: unknown) => {
        throw new FileError(500, pathError("stat", resolved, err).message);
      });
      if (stat.isDirectory()) throw new FileError(400, `open ${resolved}: not a file`);
      const before = await readWhole(fh, stat.size).catch((err: unknown) => {
        throw new FileError(500, `read ${resolved}: ${pathError("read", resolved, err).message}`);
      });
      return { before, mode: stat.mode };
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private diff(edit: PendingEdit): string {
    try {
      return unifiedDiff(edit.target.entry.path, edit.before, edit.after);
    } catch (err) {
      this.opts.log.warn({ err, path: edit.target.entry.path }, "unable to compute diff");
      return "";
    }
  }

  private trackPaths(scope: ChatScope, paths: string[]): void {
    if (!scope.chatId) return;
    this.opts.onPathsChanged([scope.chatId, ...scope.ancestorChatIds], paths);
  }
}

/** The directory mkdir -p failed on (Node reports the deepest one it tried), for Go's PathError text. */
function mkdirFailurePath(err: unknown, resolved: string): string {
  const p = (err as { path?: unknown }).path;
  return typeof p === "string" ? p : path.dirname(resolved);
}
