import fs from "node:fs";
import path from "node:path";
import type Database from "better-sqlite3";
import { errnoCode } from "../errors.js";
import { openDatabase } from "../sqlite.js";
import { batchesIn, decodeLogBatch, type LogBatch } from "./log-batch.js";
import type { SpoolStats } from "./metrics.js";

/** File name of the spool's database inside the data dir. */
export const SPOOL_DB_FILE = "boundary-spool.db";
/** SQLite's codes for a file that is not (or no longer) a readable database. */
const CORRUPT_CODES: ReadonlySet<string> = new Set(["SQLITE_NOTADB", "SQLITE_CORRUPT"]);

/**
 * Lane of a batch whose connection is unknown: spooled without one, or in an
 * earlier run of the agent (connection numbers do not survive a restart).
 */
export const UNKNOWN_LANE = 0;

/** A spooled batch: its position in the spool and the batch as received. */
export interface SpooledBatch {
  id: number;
  batch: LogBatch;
  /** The connection it arrived on in this run, or UNKNOWN_LANE. */
  lane: number;
  /** Encoded size, as counted against the bound. */
  bytes: number;
}

/** Reads the current time in milliseconds; handed in so tests can move it. */
export type Clock = () => number;

/** The database and its prepared statements, once opened. */
interface OpenSpool {
  db: Database.Database;
  insertAt: Database.Statement;
  insertTail: Database.Statement;
  selectHead: Database.Statement;
  selectOldest: Database.Statement;
  deleteOne: Database.Statement;
}

interface Row {
  id: number;
  lane: number;
  request: Buffer;
  batches: number;
}

function spooled(row: Row): SpooledBatch {
  const batch = decodeLogBatch(row.request);
  return {
    id: row.id,
    lane: row.lane,
    batch: row.batches === 1 ? batch : { ...batch, batches: row.batches },
    bytes: row.request.length,
  };
}

/**
 * A bounded, durable FIFO of boundary log batches in SQLite in the data dir.
 *
 * Why SQLite rather than append-only segment files: it is already what the
 * embedded upstream stores into, it gives atomic multi-batch appends and
 * removal from the head without compaction, and its crash recovery is
 * thoroughly tested; segment files would need their own CRC framing, torn-tail
 * scanning and segment rotation to reach the same guarantees.
 *
 * Durability: WAL journal with `synchronous = NORMAL`. A batch is in the WAL
 * file when `append` returns, so it survives the agent being killed (even
 * with SIGKILL); SQLite's WAL frame checksums detect a torn last write after
 * a crash and roll it back on open, so a half-written batch is skipped, never
 * delivered garbled. Only a power loss or kernel crash may lose the batches
 * of the last moments, because WAL commits are not fsynced one by one (a
 * checkpoint fsyncs). Row ids order the batches; `prepend` uses ids below the
 * current head so a batch whose forward failed goes back in front. Each batch
 * also keeps the lane (connection) it arrived on; opening the spool resets
 * them all to UNKNOWN_LANE, since connections do not outlive the process.
 * A row may be a call of several received batches joined (see coalesce.ts);
 * it keeps how many, for the batch counters.
 */
export class Spool {
  private open: OpenSpool | undefined;
  /** Rows. */
  private count = 0;
  /** Received batches the rows carry (a row may be several joined). */
  private received = 0;
  private size = 0;

  /**
   * Opens the spool at `file` if it exists (a spool left with batches by an
   * earlier run; one left empty is removed); otherwise nothing is opened,
   * SQLite not even loaded, until the first write creates it.
   */
  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
    private readonly now: Clock = Date.now,
  ) {
    if (!fs.existsSync(file)) return;
    this.db();
    if (this.count === 0) this.close();
  }

  /** The open database, opened (and created) on first need. */
  private db(): OpenSpool {
    if (this.open) return this.open;
    const db = openDatabase(this.file);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.exec(`
        CREATE TABLE IF NOT EXISTS batches (
          id INTEGER PRIMARY KEY,
          spooled_at INTEGER NOT NULL,
          request BLOB NOT NULL,
          lane INTEGER NOT NULL DEFAULT 0,
          batches INTEGER NOT NULL DEFAULT 1
        )`);
      // Spools written by earlier versions lack the later columns.
      const columns = db.prepare("SELECT name FROM pragma_table_info('batches')").all() as { name: string }[];
      if (!columns.some((c) => c.name === "lane")) {
        db.exec("ALTER TABLE batches ADD COLUMN lane INTEGER NOT NULL DEFAULT 0");
      }
      if (!columns.some((c) => c.name === "batches")) {
        db.exec("ALTER TABLE batches ADD COLUMN batches INTEGER NOT NULL DEFAULT 1");
      }
      db.prepare("UPDATE batches SET lane = ? WHERE lane != ?").run(UNKNOWN_LANE, UNKNOWN_LANE);
      const open: OpenSpool = {
        db,
        insertAt: db.prepare("INSERT INTO batches (id, spooled_at, request, lane, batches) VALUES (?, ?, ?, ?, ?)"),
        insertTail: db.prepare("INSERT INTO batches (spooled_at, request, lane, batches) VALUES (?, ?, ?, ?)"),
        selectHead: db.prepare("SELECT id, lane, request, batches FROM batches ORDER BY id LIMIT ?"),
        selectOldest: db.prepare("SELECT MIN(spooled_at) AS t FROM batches"),
        deleteOne: db.prepare("DELETE FROM batches WHERE id = ?"),
      };
      const totals = db
        .prepare("SELECT COUNT(*) AS n, COALESCE(SUM(batches), 0) AS received, COALESCE(SUM(LENGTH(request)), 0) AS bytes FROM batches")
        .get() as { n: number; received: number; bytes: number };
      this.count = totals.n;
      this.received = totals.received;
      this.size = totals.bytes;
      this.open = open;
      return open;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Opens (or creates) the spool of a data dir. */
  static inDataDir(dataDir: string, maxBytes: number, now?: Clock): Spool {
    return new Spool(path.join(dataDir, SPOOL_DB_FILE), maxBytes, now);
  }

  /**
   * Like inDataDir, but a spool file that is not a readable database is
   * renamed aside (its path is handed to `movedAside`) and a fresh one opened,
   * so one damaged file does not disable the spool for good.
   */
  static recoverInDataDir(
    dataDir: string,
    maxBytes: number,
    now: Clock | undefined,
    movedAside: (file: string, err: unknown) => void,
  ): Spool {
    try {
      return Spool.inDataDir(dataDir, maxBytes, now);
    } catch (err) {
      if (!CORRUPT_CODES.has(errnoCode(err) ?? "")) throw err;
      const file = path.join(dataDir, SPOOL_DB_FILE);
      const aside = `${file}.corrupt-${Date.now()}`;
      fs.renameSync(file, aside);
      for (const suffix of ["-wal", "-shm"]) fs.rmSync(file + suffix, { force: true });
      movedAside(aside, err);
      return Spool.inDataDir(dataDir, maxBytes, now);
    }
  }

  /** Received batches the rows carry (what the spool gauge and log lines count). */
  get receivedBatches(): number {
    return this.received;
  }

  /** Bytes the spool may still take. */
  get room(): number {
    return Math.max(0, this.maxBytes - this.size);
  }

  /** Rows waiting: each is one call's worth (stats() counts the received batches in them). */
  get batches(): number {
    return this.count;
  }

  /**
   * Appends batches at the tail, oldest first, in one transaction; `lanes`
   * gives each one's lane (UNKNOWN_LANE when absent). Stops at the first that
   * would take the spool past its byte bound and returns the batches that did
   * not fit.
   */
  append(batches: readonly LogBatch[], lanes?: readonly number[]): LogBatch[] {
    const fits = this.fitting(batches);
    if (fits > 0) {
      const at = this.now();
      const { db, insertTail } = this.db();
      db.transaction(() => {
        for (let i = 0; i < fits; i++) insertTail.run(at, batches[i]!.bytes, lanes?.[i] ?? UNKNOWN_LANE, batchesIn(batches[i]!));
      })();
      this.counted(batches, fits);
    }
    return batches.slice(fits);
  }

  /** How many of `batches`, from the first, fit within the byte bound. */
  private fitting(batches: readonly LogBatch[]): number {
    let fits = 0;
    let bytes = this.size;
    while (fits < batches.length && bytes + batches[fits]!.bytes.length <= this.maxBytes) bytes += batches[fits++]!.bytes.length;
    return fits;
  }

  /** Counts the first `n` of `batches` as spooled. */
  private counted(batches: readonly LogBatch[], n: number): void {
    for (let i = 0; i < n; i++) {
      this.size += batches[i]!.bytes.length;
      this.received += batchesIn(batches[i]!);
    }
    this.count += n;
  }

  /** Spool id of the batch most recently put back by prepend or prependAll. */
  lastPrepended: number | undefined;

  /** Puts a batch back at the head (it was taken out and not delivered); false when it does not fit. */
  prepend(batch: LogBatch, lane = UNKNOWN_LANE): boolean {
    return this.prependAll([batch], lane).length === 0;
  }

  /**
   * Puts batches back at the head, in their order, in one transaction (they
   * were taken out and not delivered). Keeps the oldest that fit the bound
   * and returns the rest.
   */
  prependAll(batches: readonly LogBatch[], lane = UNKNOWN_LANE): LogBatch[] {
    const fits = this.fitting(batches);
    if (fits === 0) return batches.slice();
    const { db, insertAt, selectHead } = this.db();
    const head = selectHead.get(1) as Row | undefined;
    const first = (head?.id ?? 1) - fits;
    const at = this.now();
    db.transaction(() => {
      for (let i = 0; i < fits; i++) insertAt.run(first + i, at, batches[i]!.bytes, lane, batchesIn(batches[i]!));
    })();
    this.counted(batches, fits);
    this.lastPrepended = first;
    return batches.slice(fits);
  }

  /**
   * The batches a drain may send next, oldest first, left in place: from the
   * first `rows` at the head, at most `perLane` of each lane (its oldest),
   * and either only UNKNOWN_LANE batches or none, whichever the head is.
   * Only the batches returned are decoded.
   */
  peekLanes(rows: number, perLane: number): SpooledBatch[] {
    if (!this.open) return [];
    const head = this.open.selectHead.all(rows) as Row[];
    const unknown = head[0]?.lane === UNKNOWN_LANE;
    const taken = new Map<number, number>();
    const out: SpooledBatch[] = [];
    for (const row of head) {
      if ((row.lane === UNKNOWN_LANE) !== unknown) break;
      const n = taken.get(row.lane) ?? 0;
      if (n >= perLane) continue;
      taken.set(row.lane, n + 1);
      out.push(spooled(row));
    }
    return out;
  }

  /** Up to `limit` batches from the head, oldest first, left in place. */
  peek(limit: number): SpooledBatch[] {
    if (!this.open) return [];
    return (this.open.selectHead.all(limit) as Row[]).map(spooled);
  }

  /** Removes a delivered batch. */
  remove(batch: SpooledBatch): void {
    if (!this.open) return;
    const row = this.open.deleteOne.run(batch.id);
    if (row.changes === 0) return;
    this.count -= 1;
    this.received = this.count === 0 ? 0 : this.received - batchesIn(batch.batch);
    this.size = this.count === 0 ? 0 : this.size - batch.bytes;
  }

  /** Removes delivered batches in one transaction. */
  removeAll(batches: readonly SpooledBatch[]): void {
    if (batches.length === 0) return;
    if (!this.open) return;
    this.open.db.transaction(() => {
      for (const batch of batches) this.remove(batch);
    })();
    if (this.count === 0) this.close();
  }

  /** Counts and the oldest batch's age, for the spool gauges. */
  stats(): SpoolStats {
    const oldest = this.open && this.count > 0 ? (this.open.selectOldest.get() as { t: number | null }).t : null;
    return {
      batches: this.received,
      bytes: this.size,
      oldestAgeSeconds: oldest === null ? 0 : Math.max(0, (this.now() - oldest) / 1000),
    };
  }

  /**
   * Closes the database, removing its files when it holds no batch (so the
   * next start opens nothing); a later write opens (or creates) it again.
   */
  close(): void {
    if (!this.open) return;
    this.open.db.close();
    this.open = undefined;
    if (this.count > 0) return;
    // The database file last: a -wal left beside no database is never replayed into a new one.
    for (const suffix of ["-wal", "-shm", ""]) fs.rmSync(this.file + suffix, { force: true });
  }
}
