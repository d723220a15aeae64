import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, describe, it, mock } from "node:test";
import fc from "fast-check";
import type { IPty } from "node-pty";
import { drainBeforeDestroy, holdSlave, PTY_DRAIN_DEADLINE_MS } from "../../src/process/pty-drain.js";
import { tempDir } from "../helpers/agentd.js";
import { alive, waitUntil } from "./api-client.js";

const pty = createRequire(import.meta.url)("node-pty") as typeof import("node-pty");
const dirs: string[] = [];

after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A stand-in for node-pty's master socket, counting real destroys. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  readable = true;
  destroys = 0;
  destroy(): this {
    this.destroys++;
    this.destroyed = true;
    return this;
  }
}

/**
 * A drain over a fake terminal whose "slave" is a scratch file, so the
 * marker it writes can be read back and fed in as the master would.
 */
function fakeDrain() {
  const d = tempDir("agentd-pty-drain-");
  dirs.push(d);
  const file = path.join(d, "slave");
  const slave = fs.openSync(file, "w+");
  const socket = new FakeSocket();
  const delivered: Buffer[] = [];
  const read = drainBeforeDestroy({ _socket: socket } as unknown as IPty, slave, (c) => delivered.push(Buffer.from(c)));
  return {
    socket,
    read,
    output: () => Buffer.concat(delivered).toString("latin1"),
    /** What node-pty does at the exit: destroy the socket. Returns the marker the drain wrote. */
    exit: () => {
      socket.destroy();
      const marker = fs.readFileSync(file, "latin1");
      fs.closeSync(slave);
      return marker;
    },
  };
}

describe("pty drain", () => {
  it("keeps all output the master had not read when node-pty's socket deadline passed", async () => {
    const term = pty.spawn("sh", ["-c", "seq 1 2000"], { cols: 80, rows: 24, encoding: null });
    const slave = holdSlave(term);
    assert.notEqual(slave, undefined);
    const chunks: Buffer[] = [];
    const read = drainBeforeDestroy(term, slave, (c) => chunks.push(Buffer.from(c)));
    term.onData((d: string | Buffer) => read(typeof d === "string" ? Buffer.from(d) : d));
    const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    // Nothing reaches the handler until long after node-pty's 200 ms destroy timer.
    term.pause();
    await waitUntil(() => !alive(term.pid), "the shell to exit");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    term.resume();
    assert.equal(await exited, 0);
    fs.closeSync(slave!);
    const want = Array.from({ length: 2000 }, (_, i) => `${i + 1}\r\n`).join("");
    assert.equal(Buffer.concat(chunks).toString(), want);
  });

  it("delivers exactly the bytes before the marker, however the reads split them", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 80 }),
        fc.string({ maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (before, afterwards, cuts) => {
          const d = fakeDrain();
          d.read(Buffer.from("earlier ", "latin1"));
          const marker = d.exit();
          // A decoy: most of the marker, then something else, is output like any other.
          const text = before + marker.slice(0, -1) + "!" + marker + afterwards;
          const bytes = Buffer.from(text, "latin1");
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          let from = 0;
          for (const p of [...points, bytes.length]) {
            d.read(bytes.subarray(from, p));
            from = p;
          }
          assert.equal(d.output(), "earlier " + before + marker.slice(0, -1) + "!");
          assert.equal(d.socket.destroys, 1);
        },
      ),
    );
  });

  it("writes a printable marker that terminal output processing leaves alone", () => {
    const marker = fakeDrain().exit();
    assert.match(marker, /^[0-9A-F]{24}$/);
    assert.notEqual(marker, fakeDrain().exit());
  });

  it("destroys the socket after its deadline when the marker never comes back, keeping held-back bytes", (t) => {
    mock.timers.enable({ apis: ["setTimeout"] });
    t.after(() => mock.timers.reset());
    const d = fakeDrain();
    const marker = d.exit();
    d.read(Buffer.from("tail" + marker.slice(0, 5), "latin1"));
    assert.equal(d.socket.destroys, 0);
    mock.timers.tick(PTY_DRAIN_DEADLINE_MS);
    assert.equal(d.socket.destroys, 1);
    assert.equal(d.output(), "tail" + marker.slice(0, 5));
  });

  it("ends the drain when the socket ends on its own", () => {
    const d = fakeDrain();
    const marker = d.exit();
    d.read(Buffer.from("x" + marker.slice(0, 3), "latin1"));
    d.socket.emit("end");
    assert.equal(d.socket.destroys, 1);
    assert.equal(d.output(), "x" + marker.slice(0, 3));
  });

  it("passes destroy through when there is no held slave or no master socket", () => {
    const socket = new FakeSocket();
    const deliver = () => {};
    assert.equal(drainBeforeDestroy({ _socket: socket } as unknown as IPty, undefined, deliver), deliver);
    assert.equal(drainBeforeDestroy({} as IPty, 1, deliver), deliver);
    socket.destroy();
    assert.equal(socket.destroys, 1);
  });
});
