import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import path from "node:path";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type Database from "better-sqlite3";
import { openDatabase } from "../sqlite.js";
import { wireBytes } from "./known-encoding.js";
import {
  ReportBoundaryLogsRequestSchema,
  UpdateAppStatusRequestSchema,
  type ReportBoundaryLogsRequest,
  type SubAgent,
  type UpdateAppStatusRequest,
} from "../../gen/coder/agent/v2/agent_pb.js";

/** File name of the embedded upstream's database inside the data dir. */
export const EMBEDDED_DB_FILE = "upstream.db";
/** Newest app-status updates kept; older rows are pruned. */
export const MAX_APP_STATUSES = 10_000;
/** Newest boundary-log batches kept; older rows are pruned. */
export const MAX_BOUNDARY_BATCHES = 200_000;
/** Inserts between two prune passes, so pruning stays off the per-call path. */
const PRUNE_EVERY = 1000;

/** One stored sub-agent, as CreateSubAgent made it. */
export interface StoredSubAgent {
  id: Uint8Array;
  name: string;
  directory: string;
  architecture: string;
  operatingSystem: string;
  displayApps: number[];
  authToken: Uint8Array;
  createdAt: string;
}

/** A boundary-log batch waiting for the next group commit. */
interface PendingBatch {
  req: ReportBoundaryLogsRequest;
  bytes: Uint8Array;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Events {
  appStatus: [UpdateAppStatusRequest];
  boundaryLogs: [ReportBoundaryLogsRequest];
}

/** 16 random bytes of a version-4 UUID, as coderd's uuid.New() gives. */
export function newUuidBytes(): Uint8Array {
  return Buffer.from(randomUUID().replace(/-/g, ""), "hex");
}

/** Text form of 16 UUID bytes. */
export function uuidText(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * What the embedded upstream keeps: app statuses, boundary-log batches and
 * sub-agents, in SQLite in the data dir. Requests are stored as their
 * protobuf bytes, exactly as received. Emits `appStatus` and `boundaryLogs`
 * after each write so a peer can watch what arrives.
 */
export class EmbeddedStore extends EventEmitter<Events> {
  private readonly db: Database.Database;
  private inserts = 0;
  private readonly insertStatus: Database.Statement;
  private readonly insertBatch: Database.Statement;
  private readonly insertBatches: (group: readonly PendingBatch[], at: string) => void;
  private pending: PendingBatch[] = [];

  constructor(file: string, opts: { readonly?: boolean } = {}) {
    super();
    this.db = openDatabase(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    if (!opts.readonly) {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS app_statuses (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          created_at TEXT NOT NULL,
          request BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS boundary_log_batches (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          received_at TEXT NOT NULL,
          log_count INTEGER NOT NULL,
          request BLOB NOT NULL
        );
        CREATE TABLE IF NOT EXISTS sub_agents (
          id BLOB PRIMARY KEY,
          name TEXT NOT NULL,
          directory TEXT NOT NULL,
          architecture TEXT NOT NULL,
          operating_system TEXT NOT NULL,
          display_apps TEXT NOT NULL,
          auth_token BLOB NOT NULL,
          created_at TEXT NOT NULL
        );`);
    }
    this.insertStatus = this.db.prepare("INSERT INTO app_statuses (created_at, request) VALUES (?, ?)");
    this.insertBatch = this.db.prepare(
      "INSERT INTO boundary_log_batches (received_at, log_count, request) VALUES (?, ?, ?)",
    );
    this.insertBatches = this.db.transaction((group: readonly PendingBatch[], at: string) => {
      for (const batch of group) this.insertBatch.run(at, batch.req.logs.length, batch.bytes);
    });
  }

  /** Opens the store of a data dir. */
  static inDataDir(dataDir: string, opts: { readonly?: boolean } = {}): EmbeddedStore {
    return new EmbeddedStore(path.join(dataDir, EMBEDDED_DB_FILE), opts);
  }

  addAppStatus(req: UpdateAppStatusRequest): void {
    this.insertStatus.run(new Date().toISOString(), toBinary(UpdateAppStatusRequestSchema, req));
    this.pruneSometimes(1);
    this.emit("appStatus", req);
  }

  /** Stores one boundary-log batch in its own transaction. */
  addBoundaryLogs(req: ReportBoundaryLogsRequest): void {
    this.insertBatch.run(new Date().toISOString(), req.logs.length, wireBytes(ReportBoundaryLogsRequestSchema, req));
    this.pruneSometimes(1);
    this.emit("boundaryLogs", req);
  }

  /**
   * Stores one boundary-log batch with every other batch handed in during
   * the same event-loop turn, in one transaction (group commit), and
   * resolves once that transaction has committed; rejects if it failed, in
   * which case none of the group was stored. Batches are stored in call order.
   */
  commitBoundaryLogs(req: ReportBoundaryLogsRequest): Promise<void> {
    const bytes = wireBytes(ReportBoundaryLogsRequestSchema, req);
    return new Promise((resolve, reject) => {
      if (this.pending.push({ req, bytes, resolve, reject }) === 1) queueMicrotask(() => this.commitPending());
    });
  }

  appStatuses(): UpdateAppStatusRequest[] {
    const rows = this.db.prepare("SELECT request FROM app_statuses ORDER BY id").all() as { request: Buffer }[];
    return rows.map((r) => fromBinary(UpdateAppStatusRequestSchema, r.request));
  }

  boundaryLogBatches(): ReportBoundaryLogsRequest[] {
    const rows = this.db.prepare("SELECT request FROM boundary_log_batches ORDER BY id").all() as {
      request: Buffer;
    }[];
    return rows.map((r) => fromBinary(ReportBoundaryLogsRequestSchema, r.request));
  }

  /** Total logs received, summed over every stored batch. */
  boundaryLogCount(): number {
    const row = this.db.prepare("SELECT COALESCE(SUM(log_count), 0) AS n FROM boundary_log_batches").get() as {
      n: number;
    };
    return row.n;
  }

  insertSubAgent(agent: StoredSubAgent): void {
    this.db
      .prepare(
        `INSERT INTO sub_agents (id, name, directory, architecture, operating_system, display_apps, auth_token, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        agent.id,
        agent.name,
        agent.directory,
        agent.architecture,
        agent.operatingSystem,
        JSON.stringify(agent.displayApps),
        agent.authToken,
        agent.createdAt,
      );
  }

  updateSubAgent(id: Uint8Array, fields: { directory?: string; displayApps: number[] }): void {
    this.db
      .prepare("UPDATE sub_agents SET display_apps = ?, directory = COALESCE(?, directory) WHERE id = ?")
      .run(JSON.stringify(fields.displayApps), fields.directory ?? null, id);
  }

  getSubAgent(id: Uint8Array): StoredSubAgent | undefined {
    const row = this.db.prepare("SELECT * FROM sub_agents WHERE id = ?").get(id) as SubAgentRow | undefined;
    return row && fromRow(row);
  }

  subAgents(): StoredSubAgent[] {
    const rows = this.db.prepare("SELECT * FROM sub_agents ORDER BY created_at, name").all() as SubAgentRow[];
    return rows.map(fromRow);
  }

  deleteSubAgent(id: Uint8Array): void {
    this.db.prepare("DELETE FROM sub_agents WHERE id = ?").run(id);
  }

  /** Commits batches still waiting for their group commit, then closes the database. */
  close(): void {
    this.commitPending();
    this.db.close();
  }

  private commitPending(): void {
    const group = this.pending;
    if (group.length === 0) return;
    this.pending = [];
    try {
      this.insertBatches(group, new Date().toISOString());
    } catch (err) {
      for (const batch of group) batch.reject(err);
      return;
    }
    this.pruneSometimes(group.length);
    for (const batch of group) batch.resolve();
    for (const batch of group) this.emit("boundaryLogs", batch.req);
  }

  private pruneSometimes(inserted: number): void {
    const before = Math.floor(this.inserts / PRUNE_EVERY);
    this.inserts += inserted;
    if (Math.floor(this.inserts / PRUNE_EVERY) === before) return;
    this.db
      .prepare("DELETE FROM app_statuses WHERE id <= (SELECT MAX(id) FROM app_statuses) - ?")
      .run(MAX_APP_STATUSES);
    this.db
      .prepare("DELETE FROM boundary_log_batches WHERE id <= (SELECT MAX(id) FROM boundary_log_batches) - ?")
      .run(MAX_BOUNDARY_BATCHES);
  }
}

interface SubAgentRow {
  id: Buffer;
  name: string;
  directory: string;
  architecture: string;
  operating_system: string;
  display_apps: string;
  auth_token: Buffer;
  created_at: string;
}

function fromRow(row: SubAgentRow): StoredSubAgent {
  return {
    id: new Uint8Array(row.id),
    name: row.name,
    directory: row.directory,
    architecture: row.architecture,
    operatingSystem: row.operating_system,
    displayApps: JSON.parse(row.display_apps) as number[],
    authToken: new Uint8Array(row.auth_token),
    createdAt: row.created_at,
  };
}

/** The wire shape of a stored sub-agent. */
export function toSubAgent(agent: StoredSubAgent): Pick<SubAgent, "name" | "id" | "authToken"> {
  return { name: agent.name, id: agent.id, authToken: agent.authToken };
}
