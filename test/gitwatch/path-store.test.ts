import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { MAX_CHATS, MAX_PATHS_PER_CHAT, PATH_STORE_FILE, PathStore } from "../../src/gitwatch/path-store.js";
import { createLogger } from "../../src/log.js";
import { tempDir } from "../helpers/agentd.js";

const A = "3f1e2d4c-5b6a-4789-8abc-def012345678";
const B = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const C = "11111111-2222-4333-8444-555555555555";
const NIL = "00000000-0000-0000-0000-000000000000";
const log = createLogger("silent");

function memoryStore(onEvict?: (r: string) => void): PathStore {
  return new PathStore({ dataDir: undefined, log, onEvict });
}

const tick = () => new Promise((r) => setImmediate(r));

describe("path store", () => {
  it("adds paths to the chat and every ancestor, skipping the nil UUID", () => {
    const store = memoryStore();
    store.addPaths([A, B, NIL], ["/w/x.go"]);
    assert.deepEqual(store.getPaths(A), ["/w/x.go"]);
    assert.deepEqual(store.getPaths(B), ["/w/x.go"]);
    assert.deepEqual(store.getPaths(NIL), []);
    assert.deepEqual(store.getPaths(C), []);
  });

  it("returns paths deduplicated and sorted", () => {
    const store = memoryStore();
    store.addPaths([A], ["/b", "/a", "/b"]);
    store.addPaths([A], ["/c", "/a"]);
    assert.deepEqual(store.getPaths(A), ["/a", "/b", "/c"]);
  });

  it("notifies subscribers of the affected chats, coalescing a burst into one call", async () => {
    const store = memoryStore();
    let a = 0;
    let c = 0;
    store.subscribe(A, () => a++);
    store.subscribe(C, () => c++);
    store.addPaths([A], ["/1"]);
    store.addPaths([A], ["/2"]);
    store.notify([A]);
    await tick();
    assert.equal(a, 1);
    assert.equal(c, 0);
    store.notify([A, C]);
    await tick();
    assert.deepEqual([a, c], [2, 1]);
  });

  it("stops calling a subscriber after unsubscribe", async () => {
    const store = memoryStore();
    let calls = 0;
    const unsubscribe = store.subscribe(A, () => calls++);
    unsubscribe();
    store.notify([A]);
    await tick();
    assert.equal(calls, 0);
  });

  it("keeps tracked paths across a restart (persisted in the data dir)", async () => {
    const dir = tempDir("agentd-pathstore-");
    try {
      const first = new PathStore({ dataDir: dir, log });
      first.addPaths([A, B], ["/repo/a.go", "/repo/b.go"]);
      await first.flush();
      assert.ok(fs.existsSync(path.join(dir, PATH_STORE_FILE)));
      const second = new PathStore({ dataDir: dir, log });
      second.load();
      assert.deepEqual(second.getPaths(A), ["/repo/a.go", "/repo/b.go"]);
      assert.deepEqual(second.getPaths(B), ["/repo/a.go", "/repo/b.go"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts empty when the persisted file is corrupt", () => {
    const dir = tempDir("agentd-pathstore-");
    try {
      fs.writeFileSync(path.join(dir, PATH_STORE_FILE), "{not json");
      const store = new PathStore({ dataDir: dir, log });
      store.load();
      assert.deepEqual(store.getPaths(A), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps what is well-formed in a damaged file and starts from it, and still persists afterwards", async () => {
    const dir = tempDir("agentd-pathstore-");
    const file = path.join(dir, PATH_STORE_FILE);
    try {
      for (const body of ["", "null", "[]", '"x"', '{"version":1,"chats":null}', '{"version":2,"chats":{}}']) {
        fs.writeFileSync(file, body);
        const store = new PathStore({ dataDir: dir, log });
        store.load();
        assert.deepEqual(store.getPaths(A), [], body);
      }
      fs.writeFileSync(file, JSON.stringify({ version: 1, chats: { [A]: "/not/a/list", [B]: [1, "/w/ok.go", null] } }));
      const store = new PathStore({ dataDir: dir, log });
      store.load();
      assert.deepEqual(store.getPaths(A), []);
      assert.deepEqual(store.getPaths(B), ["/w/ok.go"]);
      store.addPaths([A], ["/w/new.go"]);
      await store.flush();
      const reloaded = new PathStore({ dataDir: dir, log });
      reloaded.load();
      assert.deepEqual(reloaded.getPaths(A), ["/w/new.go"]);
      assert.deepEqual(reloaded.getPaths(B), ["/w/ok.go"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("drops the oldest path past the per-chat bound and counts it", () => {
    const evicted: string[] = [];
    const store = memoryStore((r) => evicted.push(r));
    const paths = Array.from({ length: MAX_PATHS_PER_CHAT + 2 }, (_, i) => `/p/${String(i).padStart(6, "0")}`);
    store.addPaths([A], paths);
    const kept = store.getPaths(A);
    assert.equal(kept.length, MAX_PATHS_PER_CHAT);
    assert.equal(kept[0], paths[2]);
    assert.deepEqual(evicted, ["paths_per_chat", "paths_per_chat"]);
  });

  it("drops the least recently updated chat past the chat bound and counts it", () => {
    const evicted: string[] = [];
    const store = memoryStore((r) => evicted.push(r));
    const ids = Array.from({ length: MAX_CHATS + 1 }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`);
    ids.slice(0, MAX_CHATS).forEach((id) => store.addPaths([id], ["/x"]));
    store.addPaths([ids[0]!], ["/y"]);
    store.addPaths([ids[MAX_CHATS]!], ["/z"]);
    assert.deepEqual(evicted, ["chats"]);
    assert.deepEqual(store.getPaths(ids[0]!), ["/x", "/y"]);
    assert.deepEqual(store.getPaths(ids[1]!), []);
  });
});
