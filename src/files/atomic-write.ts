import { randomUUID } from "node:crypto";
import fs, { type FileHandle } from "node:fs/promises";
import path from "node:path";
import { finished, type Readable } from "node:stream";
import type { Logger } from "../log.js";
import { errnoOf, FileError, pathError } from "./errors.js";

/** Permissions a new file is created with, before the umask (Coder's atomicWrite: 0666). */
const NEW_FILE_MODE = 0o666;
/**
 * Body bytes held while the write before them is in flight; past this the
 * request is paused until that write is done (4 MiB: a few milliseconds of
 * disk time, so reading the socket and writing the file overlap, at a
 * bounded memory cost per upload).
 */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** Where the bytes come from: a buffer (edits, Connect) or a stream (an HTTP body). */
export type WriteSource = Buffer | Readable;

/** Options of one atomic write. */
export interface AtomicWriteOptions {
  /** Mode of the file being replaced, kept on the new one; undefined for a new file. */
  mode: number | undefined;
  /** Past this many bytes the write stops with 413 and nothing changes. */
  maxBytes: number;
  /** Runs once the content is in the temp file, right before the rename; a throw abandons the write. */
  beforeRename?: () => Promise<void>;
  log: Logger;
}

/** The body was larger than allowed. */
export function tooLarge(maxBytes: number): FileError {
  return new FileError(413, `Request body must be at most ${maxBytes} bytes.`);
}

/** The body stream failed (the client went away or sent a broken chunked body). */
export class SourceError extends Error {}

/**
 * Writes `source` to `target` through a temp file in the same directory
 * (`.<base>.tmp.<8 hex>`, created exclusively) renamed over the target, so a
 * reader, or a daemon killed midway, sees the old content or the new one,
 * never a mix. The target's mode is kept. On any failure the temp file is
 * removed and the target is untouched. Statuses and texts are Coder's:
 * 403 for a permission error creating or renaming, else 500 `write <path>: …`.
 * Resolves with the number of bytes written.
 */
export async function atomicWrite(target: string, source: WriteSource, opts: AtomicWriteOptions): Promise<number> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp.${randomUUID().slice(0, 8)}`);
  let fh: FileHandle;
  try {
    fh = await fs.open(tmp, "wx", NEW_FILE_MODE);
  } catch (err) {
    throw new FileError(errnoOf(err) === "EACCES" || errnoOf(err) === "EPERM" ? 403 : 500, pathError("open", tmp, err).message);
  }
  let bytes: number;
  let renamed = false;
  try {
    try {
      bytes = await copyInto(fh, target, tmp, source, opts.maxBytes);
    } finally {
      await fh.close().catch((err: unknown) => {
        throw new FileError(500, `write ${target}: ${pathError("close", tmp, err).message}`);
      });
    }
    if (opts.mode !== undefined) {
      await fs.chmod(tmp, opts.mode & 0o7777).catch((err: unknown) => opts.log.warn({ err, path: target }, "unable to set file permissions"));
    }
    await opts.beforeRename?.();
    try {
      await fs.rename(tmp, target);
      renamed = true;
    } catch (err) {
      const code = errnoOf(err);
      const text = pathError("rename", tmp, err).message.replace(`rename ${tmp}:`, `rename ${tmp} ${target}:`);
      throw new FileError(code === "EACCES" || code === "EPERM" ? 403 : 500, `write ${target}: ${text}`);
    }
    return bytes;
  } finally {
    if (!renamed) {
      await fs.rm(tmp, { force: true }).catch((err: unknown) => opts.log.warn({ err, path: tmp }, "unable to clean up temp file"));
    }
  }
}

async function copyInto(fh: FileHandle, target: string, tmp: string, source: WriteSource, maxBytes: number): Promise<number> {
  const write = async (chunks: Uint8Array[]) => {
    const want = chunks.reduce((n, c) => n + c.length, 0);
    let written: number;
    try {
      ({ bytesWritten: written } = await fh.writev(chunks));
    } catch (err) {
      throw new FileError(500, `write ${target}: ${pathError("write", tmp, err).message}`);
    }
    if (written !== want) throw new FileError(500, `write ${target}: write ${tmp}: short write`);
  };
  if (!Buffer.isBuffer(source)) return pump(source, write, maxBytes);
  if (source.length > maxBytes) throw tooLarge(maxBytes);
  if (source.length > 0) await write([source]);
  return source.length;
}

/**
 * Streams `source` into `write` with the socket and the file working at
 * once: chunks that arrive while a write is in flight are gathered and go
 * out in the next write (one writev), and the source is paused while
 * MAX_PENDING_BYTES wait. Past `maxBytes` it stops with 413; a failure is
 * reported only once no write is in flight, so the caller may close the file.
 */
function pump(source: Readable, write: (chunks: Uint8Array[]) => Promise<void>, maxBytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let total = 0;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let writing = false;
    let ended = false;
    let failure: unknown;
    const stop = () => {
      source.off("data", onData);
      stopWatching();
    };
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err;
      stop();
      if (!writing) reject(err);
    };
    const flush = () => {
      if (writing || failure !== undefined) return;
      if (pendingBytes === 0) {
        if (ended) {
          stop();
          resolve(total);
        }
        return;
      }
      const batch = pending;
      pending = [];
      pendingBytes = 0;
      writing = true;
      if (!ended) source.resume();
      write(batch).then(
        () => {
          writing = false;
          if (failure !== undefined) reject(failure);
          else flush();
        },
        (err: unknown) => {
          writing = false;
          fail(err);
          if (failure !== err) reject(failure);
        },
      );
    };
    const onData = (chunk: Uint8Array) => {
      total += chunk.length;
      if (total > maxBytes) return fail(tooLarge(maxBytes));
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= MAX_PENDING_BYTES) source.pause();
      flush();
    };
    const stopWatching = finished(source, { writable: false }, (err) => {
      if (err) return fail(new SourceError("request body ended early", { cause: err }));
      ended = true;
      flush();
    });
    source.on("data", onData);
  });
}
