import { createRequire } from "node:module";
import type Database from "better-sqlite3";
import { preparePrivateDatabaseFile } from "./datadir.js";

/** better-sqlite3's constructor, loaded on first use: a daemon that never opens a database never loads SQLite. */
let constructor: typeof Database | undefined;

/**
 * Opens (or creates) the SQLite database `file`, loading better-sqlite3 the
 * first time. A writable database is made private (0600) before SQLite opens
 * it; SQLite gives its -wal and -shm files the database file's mode.
 */
export function openDatabase(file: string, options?: Database.Options): Database.Database {
  if (!options?.readonly) preparePrivateDatabaseFile(file);
  constructor ??= createRequire(import.meta.url)("better-sqlite3") as typeof Database;
  return new constructor(file, options);
}
