import assert from "node:assert/strict";
import { describe, it } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import { FOLLOW_QUEUE_MAX_BYTES, FollowQueue, type FollowItem } from "../../src/process/follow-queue.js";

async function collect(queue: FollowQueue, signal?: AbortSignal): Promise<FollowItem[]> {
  const items: FollowItem[] = [];
  for await (const item of queue.drain(signal)) items.push(item);
  return items;
}

describe("follow queue", () => {
  it("delivers chunks in order and ends with the exit", async () => {
    const q = new FollowQueue();
    const done = collect(q);
    q.push(Buffer.from("a"));
    q.push(Buffer.from("b"));
    q.end(3);
    q.push(Buffer.from("after end"));
    assert.deepEqual(await done, [
      { kind: "data", data: Buffer.from("a"), droppedBytes: 0 },
      { kind: "data", data: Buffer.from("b"), droppedBytes: 0 },
      { kind: "exit", exitCode: 3, droppedBytes: 0 },
    ]);
  });

  it("keeps its own copy of each chunk", async () => {
    const q = new FollowQueue();
    const chunk = Buffer.from("abc");
    q.push(chunk);
    chunk.fill(0x78);
    q.end(0);
    const [first] = await collect(q);
    assert.equal(first?.kind === "data" && first.data.toString(), "abc");
  });

  it("drops output past its bound for a slow follower and reports the gap", async () => {
    const dropped: number[] = [];
    const q = new FollowQueue((n) => dropped.push(n), 10, 0);
    q.push(Buffer.from("12345"));
    q.push(Buffer.from("67890"));
    q.push(Buffer.from("lost!"));
    q.push(Buffer.from("gone"));
    const reader = q.drain();
    const first = await reader.next();
    assert.equal(first.value?.kind, "data");
    await reader.next();
    q.push(Buffer.from("back"));
    q.end(0);
    const rest: FollowItem[] = [];
    for await (const item of reader) rest.push(item);
    assert.deepEqual(rest, [
      { kind: "data", data: Buffer.from("back"), droppedBytes: 9 },
      { kind: "exit", exitCode: 0, droppedBytes: 0 },
    ]);
    assert.deepEqual(dropped, [5, 4]);
  });

  it("stops when the follower's signal aborts", async () => {
    const q = new FollowQueue();
    const ctl = new AbortController();
    const done = collect(q, ctl.signal);
    q.push(Buffer.from("x"));
    await new Promise((r) => setImmediate(r));
    ctl.abort();
    const items = await done;
    assert.equal(items.length, 1);
  });

  it("stays near its byte bound when the output arrives one byte at a time", () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    gc();
    const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const q = new FollowQueue();
    const byte = Buffer.from("x");
    for (let i = 0; i < 1_000_000; i++) q.push(byte);
    gc();
    const grown = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 4 * FOLLOW_QUEUE_MAX_BYTES, `a queue of one-byte chunks holds ${(grown / 2 ** 20).toFixed(1)} MiB`);
    q.end(0);
  });
});
