import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { ReportBoundaryLogsRequestSchema } from "../../gen/coder/agent/v2/agent_pb.js";
import { logBatchOf, type LogBatch } from "../../src/boundary/log-batch.js";
import { Spool, SPOOL_DB_FILE } from "../../src/boundary/spool.js";
import { tempDir } from "../helpers/agentd.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function scratch(): string {
  const d = tempDir("agentd-spool-");
  dirs.push(d);
  return d;
}

const req = (id: string, pad = 0): LogBatch =>
  logBatchOf(create(ReportBoundaryLogsRequestSchema, { sessionId: id, confinedProcessName: "p".repeat(pad) }));
const ids = (spool: Spool) => spool.peek(1000).map((b) => b.batch.sessionId);

describe("boundary spool", () => {
  test("keeps batches in order, with a returned batch back in front", () => {
    const spool = Spool.inDataDir(scratch(), 1 << 20);
    spool.append([req("a"), req("b")]);
    const [a] = spool.peek(1);
    spool.remove(a!);
    assert.ok(spool.prepend(a!.batch));
    spool.append([req("c")]);
    assert.deepEqual(ids(spool), ["a", "b", "c"]);
    spool.close();
  });

  test("survives a reopen: the next start finds the same batches and sizes", () => {
    const dir = scratch();
    const first = Spool.inDataDir(dir, 1 << 20);
    first.append([req("x", 100), req("y", 100)]);
    const before = first.stats();
    first.close();
    const second = Spool.inDataDir(dir, 1 << 20);
    assert.deepEqual(ids(second), ["x", "y"]);
    assert.deepEqual(second.stats().bytes, before.bytes);
    second.close();
  });

  test("refuses what would pass the byte bound and returns it", () => {
    const spool = Spool.inDataDir(scratch(), 250);
    const rejected = spool.append([req("1", 100), req("2", 100), req("3", 100)]);
    assert.deepEqual(
      rejected.map((r) => r.sessionId),
      ["3"],
    );
    assert.equal(spool.prepend(req("0", 100)), false);
    assert.ok(spool.stats().bytes <= 250);
    spool.close();
  });

  test("reports its oldest batch's age from the injected clock", () => {
    let now = 1_000_000;
    const spool = Spool.inDataDir(scratch(), 1 << 20, () => now);
    assert.deepEqual(spool.stats(), { batches: 0, bytes: 0, oldestAgeSeconds: 0 });
    spool.append([req("old")]);
    now += 90_000;
    spool.append([req("new")]);
    assert.equal(spool.stats().oldestAgeSeconds, 90);
    assert.equal(spool.stats().batches, 2);
    spool.close();
  });

  test("a writer killed with SIGKILL mid-append leaves every committed batch readable", async () => {
    const dir = scratch();
    const writer = spawn(
      process.execPath,
      ["--import", "tsx", path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "spool-writer.ts"), dir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let committed = -1;
    let pending = "";
    writer.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      if (lines.length) committed = Number(lines.at(-1));
    });
    const exited = new Promise((resolve) => writer.once("exit", resolve));
    const deadline = Date.now() + 60_000;
    while (committed < 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    writer.kill("SIGKILL");
    await exited;
    assert.ok(committed >= 500, "the writer made progress");
    const spool = Spool.inDataDir(dir, 1 << 30);
    const all = spool.peek(1_000_000).map((b) => Number(b.batch.sessionId));
    assert.ok(all.length >= committed + 1, `${all.length} batches, ${committed + 1} reported committed`);
    assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i), "in order, none garbled");
    assert.equal(spool.batches, all.length);
    spool.close();
  });
});

describe("opening the spool lazily", () => {
  test("nothing is created until the first write, and a spool emptied removes its file", () => {
    const dir = scratch();
    const file = path.join(dir, SPOOL_DB_FILE);
    const spool = Spool.inDataDir(dir, 1 << 20);
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(spool.peek(10), []);
    spool.append([req("a"), req("b")]);
    assert.equal(fs.existsSync(file), true);
    spool.removeAll(spool.peek(10));
    assert.equal(fs.existsSync(file), false, "an empty spool keeps no file");
    assert.deepEqual(spool.stats(), { batches: 0, bytes: 0, oldestAgeSeconds: 0 });
    spool.append([req("c")]);
    assert.deepEqual(ids(spool), ["c"], "the next write opens it again");
    spool.close();
    assert.equal(fs.existsSync(file), true, "a spool holding batches is kept for the next start");
    const again = Spool.inDataDir(dir, 1 << 20);
    assert.deepEqual(ids(again), ["c"]);
    again.close();
  });

  test("an empty spool file left by an earlier run is removed at start", () => {
    const dir = scratch();
    const file = path.join(dir, SPOOL_DB_FILE);
    const first = Spool.inDataDir(dir, 1 << 20);
    first.append([req("a")]);
    const [a] = first.peek(1);
    first.remove(a!);
    assert.equal(fs.existsSync(file), true);
    // Killed here: the file stays, holding no batch.
    const second = Spool.inDataDir(dir, 1 << 20);
    assert.equal(fs.existsSync(file), false);
    assert.equal(second.batches, 0);
    first.close();
  });
});

describe("a damaged spool file", () => {
  test("is moved aside and a fresh spool opened", () => {
    const dir = scratch();
    fs.writeFileSync(path.join(dir, "boundary-spool.db"), "this is not a database, just bytes ".repeat(200));
    const moved: string[] = [];
    const spool = Spool.recoverInDataDir(dir, 1 << 20, undefined, (file) => moved.push(file));
    spool.append([req("fresh")]);
    assert.deepEqual(ids(spool), ["fresh"]);
    spool.close();
    assert.equal(moved.length, 1);
    assert.match(fs.readFileSync(moved[0]!, "utf8"), /^this is not a database/);
  });
});
