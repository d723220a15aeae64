import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { Registry } from "prom-client";
import { createLogger } from "../../src/log.js";
import { FIFO_DIR_PREFIX, FifoPool } from "../../src/process/fifo-pool.js";
import { ProcessManager } from "../../src/process/manager.js";
import { tempDir } from "../helpers/agentd.js";

const log = createLogger("silent");
const NO_CHAT = { chatId: undefined, ancestorChatIds: [] };
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = tempDir("agentd-fifo-");
  dirs.push(d);
  return d;
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn("true");
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

/** A directory shaped like one a pool of the process `pid` made, holding `n` FIFOs. */
function fifoDir(parent: string, pid: number, n = 2, name = `${FIFO_DIR_PREFIX}${pid}-abcdef`): string {
  const d = path.join(parent, name);
  fs.mkdirSync(d, { mode: 0o700 });
  if (n > 0) execFileSync("mkfifo", Array.from({ length: n }, (_, i) => path.join(d, `${i}.fifo`)));
  return d;
}

async function runWith(pool: FifoPool, command: string) {
  const m = new ProcessManager({ log, registry: new Registry(), maxProcesses: 64, fifos: pool });
  try {
    const { id } = await m.startProcess({ command }, NO_CHAT);
    return await m.output(id, NO_CHAT, { wait: true });
  } finally {
    await m.close();
  }
}

describe("FIFO pool: stale directories", () => {
  it("removes a directory whose owner pid is gone, and only such a directory", async () => {
    const parent = scratch();
    const stale = fifoDir(parent, await deadPid());
    const live = spawn("sleep", ["30"]);
    try {
      const ownedByLive = fifoDir(parent, live.pid!);
      const notAllFifos = fifoDir(parent, await deadPid());
      fs.writeFileSync(path.join(notAllFifos, "notes.txt"), "not a FIFO");
      const otherName = fifoDir(parent, await deadPid(), 2, "agentd-output-Xy12Zq");
      const someoneElse = fifoDir(parent, await deadPid(), 2, `other-output-${await deadPid()}-abcdef`);

      const pool = new FifoPool(log, { parent });
      assert.equal(await pool.sweepStale(), 1);
      pool.close();

      assert.equal(fs.existsSync(stale), false);
      for (const kept of [ownedByLive, notAllFifos, otherName, someoneElse]) assert.equal(fs.existsSync(kept), true, kept);
    } finally {
      live.kill();
    }
  });

  it("never removes its own directory", async () => {
    const parent = scratch();
    const pool = new FifoPool(log, { parent });
    assert.ok(pool.acquire());
    assert.equal(await pool.sweepStale(), 0);
    assert.equal(fs.readdirSync(parent).length, 1);
    pool.close();
    assert.deepEqual(fs.readdirSync(parent), []);
  });

  it("names its directory after its own pid", () => {
    const parent = scratch();
    const pool = new FifoPool(log, { parent });
    const fifo = pool.acquire()!;
    assert.match(path.basename(path.dirname(fifo)), new RegExp(`^${FIFO_DIR_PREFIX}${process.pid}-`));
    pool.close();
  });

  it("is swept when the process manager starts", async () => {
    const parent = scratch();
    const stale = fifoDir(parent, await deadPid());
    const m = new ProcessManager({ log, registry: new Registry(), maxProcesses: 4, fifos: new FifoPool(log, { parent }) });
    await m.start();
    await m.close();
    assert.equal(fs.existsSync(stale), false);
  });
});

describe("FIFO pool: failures", () => {
  it("falls back to two pipes when the temp directory cannot be written", async () => {
    const pool = new FifoPool(log, { parent: "/nonexistent/agentd-tmp" });
    const r = await runWith(pool, "echo out; echo err >&2; exit 3");
    assert.equal(r.output, "out\nerr\n");
    assert.equal(r.exitCode, 3);
  });

  it("still captures output when a pooled FIFO vanished from the directory", async () => {
    const parent = scratch();
    const pool = new FifoPool(log, { parent });
    const fifo = pool.acquire()!;
    pool.release(fifo, true);
    fs.rmSync(path.dirname(fifo), { recursive: true, force: true });
    const r = await runWith(pool, "echo still here");
    assert.equal(r.output, "still here\n");
    assert.equal(r.exitCode, 0);
  });
});
