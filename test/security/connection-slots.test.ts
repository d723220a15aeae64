import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type net from "node:net";
import { describe, it } from "node:test";
import { ConnectionSlots } from "../../src/connection-slots.js";

/** Just enough of a socket for the slots: data and close events, destroy. */
class FakeConn extends EventEmitter {
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
    this.emit("close");
  }
}

function conn(): FakeConn & net.Socket {
  return new FakeConn() as FakeConn & net.Socket;
}

describe("connection slots at the cap", () => {
  it("refuses a newcomer while every open connection was active within the idle threshold", () => {
    let now = 0;
    const slots = new ConnectionSlots(2, 60_000, () => now);
    const [a, b] = [conn(), conn()];
    assert.equal(slots.admit(a), "accepted");
    assert.equal(slots.admit(b), "accepted");
    now = 59_999;
    assert.equal(slots.admit(conn()), "refused");
    assert.equal(a.destroyed || b.destroyed, false);
  });

  it("evicts the connection idle the longest once it has been idle 60 s", () => {
    let now = 0;
    const slots = new ConnectionSlots(2, 60_000, () => now);
    const [a, b] = [conn(), conn()];
    slots.admit(a);
    now = 10;
    slots.admit(b);
    now = 30_000;
    a.emit("data", Buffer.from("x")); // a is busy; b is now the idlest
    now = 60_010;
    const c = conn();
    assert.equal(slots.admit(c), "evicted");
    assert.equal(b.destroyed, true);
    assert.equal(a.destroyed, false);
    assert.equal(slots.size, 2);
  });

  it("frees a slot when a connection closes", () => {
    const slots = new ConnectionSlots(1, 60_000, () => 0);
    const a = conn();
    slots.admit(a);
    a.destroy();
    assert.equal(slots.size, 0);
    assert.equal(slots.admit(conn()), "accepted");
  });
});
