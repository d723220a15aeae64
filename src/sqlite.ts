import { createRequire } from "node:module";
import type Database from "better-sqlite3";

/** better-sqlite3's constructor, loaded on first use: a daemon that never opens a database never loads SQLite. */
let constructor: typeof Database | undefined;

/** Opens (or creates) the SQLite database `file`, loading better-sqlite3 the first time. */
export function openDatabase(file: string, options?: Database.Options): Database.Database {
  constructor ??= createRequire(import.meta.url)("better-sqlite3") as typeof Database;
  return new constructor(file, options);
}
