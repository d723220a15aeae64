import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { GitWatchService } from "../../gen/agentd/gitwatch/v1/gitwatch_pb.js";
import type { GitServerMessage } from "../../src/gitwatch/messages.js";
import { freshDirs, git, initRepo, repoIn, startWatchServer, WatchClient, write, type WatchServer } from "./helpers.js";

const freshDir = freshDirs("agentd-gitwatch-");

const isChanges = (m: GitServerMessage) => m.type === "changes";
const scannedNs = (m: GitServerMessage) => {
  const [, whole, frac = ""] = /^(.*?)(?:\.(\d+))?Z$/.exec(m.scanned_at!)!;
  return BigInt(Date.parse(`${whole}Z`)) * 1_000_000n + BigInt(frac.padEnd(9, "0"));
};

describe("git watch WebSocket", () => {
  let server: WatchServer;
  before(async () => {
    server = await startWatchServer({ pollIntervalMs: 60_000 });
  });
  after(() => server.close());

  it("sends the chat's repository on connect, with Coder's message shape", async () => {
    const root = initRepo(path.join(freshDir(), "app"));
    git(root, "remote", "add", "origin", "https://github.com/acme/app.git");
    const file = write(root, "a.txt", "new\n");
    const chat = randomUUID();
    server.gitwatch.pathStore.addPaths([chat], [file]);
    const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
    const msg = await client.next((m) => repoIn(m, root) !== undefined);
    assert.equal(msg.type, "changes");
    assert.match(msg.scanned_at!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
    const repo = repoIn(msg, root)!;
    assert.deepEqual(Object.keys(repo).sort(), ["branch", "remote_origin", "repo_root", "unified_diff"]);
    assert.equal(repo.branch, "main");
    assert.equal(repo.remote_origin, "https://github.com/acme/app.git");
    assert.match(repo.unified_diff!, /\+new/);
    client.close();
  });

  it("includes a clean repository on its first scan, with empty fields omitted", async () => {
    const root = initRepo(path.join(freshDir(), "clean"));
    const chat = randomUUID();
    server.gitwatch.pathStore.addPaths([chat], [root]);
    const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
    const msg = await client.next(isChanges);
    assert.deepEqual(msg.repositories, [{ repo_root: root, branch: "main" }]);
    client.close();
  });

  it("watches several repositories and picks up paths added after connect", async () => {
    const base = freshDir();
    const one = initRepo(path.join(base, "one"));
    const two = initRepo(path.join(base, "two"));
    const chat = randomUUID();
    const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
    server.gitwatch.pathStore.addPaths([chat], [write(one, "x.txt", "x\n")]);
    await client.next((m) => repoIn(m, one) !== undefined);
    const seen = client.messages.length;
    server.gitwatch.pathStore.addPaths([chat], [write(two, "y.txt", "y\n")]);
    const msg = await client.next((m) => repoIn(m, two) !== undefined, { from: seen });
    assert.equal(repoIn(msg, one), undefined, "an unchanged repository is not sent again");
    client.close();
  });

  it("sends a heartbeat when nothing changed and the changed repository when something did", async () => {
    const { root, client } = await watchNewRepo(server, "hb");
    let seen = client.messages.length;
    client.send({ type: "refresh" });
    const heartbeat = await client.next(isChanges, { from: seen });
    assert.equal(heartbeat.repositories, undefined);
    assert.ok(heartbeat.scanned_at);
    seen = client.messages.length;
    write(root, "dirty.txt", "one\n");
    client.send({ type: "refresh" });
    const first = await client.next((m) => repoIn(m, root) !== undefined, { from: seen });
    assert.match(repoIn(first, root)!.unified_diff!, /\+one/);
    seen = client.messages.length;
    write(root, "dirty.txt", "two\n");
    client.send({ type: "refresh" });
    const second = await client.next((m) => repoIn(m, root) !== undefined, { from: seen });
    assert.match(repoIn(second, root)!.unified_diff!, /\+two/);
    client.close();
  });

  it("reports branch and origin changes", async () => {
    const { root, client } = await watchNewRepo(server, "br");
    let seen = client.messages.length;
    git(root, "checkout", "-q", "-b", "feature");
    client.send({ type: "refresh" });
    assert.equal(repoIn(await client.next((m) => repoIn(m, root) !== undefined, { from: seen }), root)!.branch, "feature");
    seen = client.messages.length;
    git(root, "remote", "add", "origin", "https://example.com/r.git");
    client.send({ type: "refresh" });
    const msg = await client.next((m) => repoIn(m, root) !== undefined, { from: seen });
    assert.equal(repoIn(msg, root)!.remote_origin, "https://example.com/r.git");
    client.close();
  });

  it("keeps scans at least one second apart, measured from scan starts, and coalesces requests meanwhile", async () => {
    const { client } = await watchNewRepo(server, "rl");
    for (let i = 0; i < 5; i++) client.send({ type: "refresh" });
    await client.next(isChanges, { from: 1 });
    // Five refreshes inside one cooldown are one scan: no second scan follows a cooldown later.
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(client.messages.filter(isChanges).length, 2);
    client.send({ type: "refresh" });
    await client.next(isChanges, { from: 2 });
    const stamps = client.messages.filter(isChanges).map(scannedNs);
    for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i]! - stamps[i - 1]! >= 1_000_000_000n, "cooldown kept");
    client.close();
  });

  it("emits removed once for a deleted repository, then forgets it", async () => {
    const base = freshDir();
    const root = initRepo(path.join(base, "del"));
    const stay = initRepo(path.join(base, "stay"));
    const chat = randomUUID();
    server.gitwatch.pathStore.addPaths([chat], [root, stay]);
    const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
    await client.next((m) => repoIn(m, root) !== undefined && repoIn(m, stay) !== undefined);
    fs.rmSync(root, { recursive: true, force: true });
    client.send({ type: "refresh" });
    const msg = await client.next((m) => repoIn(m, root)?.removed === true);
    assert.deepEqual(msg.repositories, [{ repo_root: root, branch: "", removed: true }]);
    // The next scan covers only the repository that is left: a heartbeat, nothing about the removed one.
    const seen = client.messages.length;
    client.send({ type: "refresh" });
    const next = await client.next(isChanges, { from: seen });
    assert.equal(next.repositories, undefined);
    assert.equal(client.messages.filter((m) => repoIn(m, root) !== undefined).length, 2);
    client.close();
  });

  it("keeps a repository whose scan fails for another reason (corrupt HEAD) and reports it once it recovers", async () => {
    const { root, client } = await watchNewRepo(server, "transient");
    const head = path.join(root, ".git", "HEAD");
    const good = fs.readFileSync(head);
    fs.writeFileSync(head, "corrupt");
    let seen = client.messages.length;
    client.send({ type: "refresh" });
    const during = await client.next(isChanges, { from: seen });
    assert.equal(during.repositories, undefined, "neither removed nor sent while the scan fails");
    fs.writeFileSync(head, good);
    write(root, "recovered.txt", "back\n");
    seen = client.messages.length;
    client.send({ type: "refresh" });
    const recovered = await client.next(isChanges, { from: seen });
    assert.match(repoIn(recovered, root)?.unified_diff ?? "", /\+back/);
    client.close();
  });

  it("brings a removed repository back when a later notification names it", async () => {
    const base = freshDir();
    const root = initRepo(path.join(base, "again"));
    const chat = randomUUID();
    server.gitwatch.pathStore.addPaths([chat], [root]);
    const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
    await client.next(isChanges);
    fs.rmSync(root, { recursive: true, force: true });
    client.send({ type: "refresh" });
    await client.next((m) => repoIn(m, root)?.removed === true);
    const seen = client.messages.length;
    initRepo(root);
    write(root, "back.txt", "back\n");
    server.gitwatch.pathStore.addPaths([chat], [root]);
    const msg = await client.next((m) => repoIn(m, root) !== undefined, { from: seen });
    assert.match(repoIn(msg, root)!.unified_diff!, /\+back/);
    client.close();
  });

  it("sends nothing, not even a heartbeat, while the chat has no repository", async () => {
    const plain = freshDir();
    const chat = randomUUID();
    server.gitwatch.pathStore.addPaths([chat], [write(plain, "notes.txt", "x"), "relative/path"]);
    const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
    await assertSilentAfterRefresh(client);
    client.close();
  });

  it("answers an unknown message type with an error and keeps the socket open", async () => {
    const client = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`);
    client.send({ type: "subscribe" });
    client.send({});
    const errors = await client.next((m) => m.type === "error" && client.messages.length >= 2);
    assert.deepEqual(errors, { type: "error", message: "unknown message type" });
    assert.deepEqual(client.messages, [errors, errors]);
    assert.equal(client.ws.readyState, client.ws.OPEN);
    client.close();
  });

  it("closes the socket with 1001 on a non-JSON or binary frame", async () => {
    const a = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`);
    a.send("not json");
    assert.equal((await a.closed).code, 1001);
    const b = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`);
    b.ws.send(Buffer.from('{"type":"refresh"}'), { binary: true });
    assert.equal((await b.closed).code, 1001);
  });

  it("answers 400 with Coder's error envelope, before the upgrade, to a chat_id that is not a UUID", async () => {
    for (const bad of ["nope", "1234", "00000000-0000-0000-0000-00000000000g"]) {
      const res = await rawUpgrade(server.url, `/api/v0/git/watch?chat_id=${bad}`);
      assert.equal(res.status, 400, bad);
      assert.deepEqual(JSON.parse(res.body), { message: "Invalid chat_id.", detail: "chat_id must be a UUID." });
    }
    await assert.rejects(WatchClient.connect(server.url, "?chat_id=nope"), /400/);
  });

  it("accepts a connection without a chat_id but never watches anything", async () => {
    const client = await WatchClient.connect(server.url, "");
    await assertSilentAfterRefresh(client);
    client.close();
  });

  it("shows a sub-agent's edits to the parent chat's watcher (ancestor chats)", async () => {
    const root = initRepo(path.join(freshDir(), "anc"));
    const parent = randomUUID();
    const child = randomUUID();
    const client = await WatchClient.connect(server.url, `?chat_id=${parent}`);
    const res = await fetch(`${server.url}/api/v0/git/paths`, {
      method: "POST",
      headers: { "Coder-Chat-Id": child, "Coder-Ancestor-Chat-Ids": JSON.stringify([parent]) },
      body: JSON.stringify({ paths: [write(root, "sub.txt", "from child\n")] }),
    });
    assert.equal(res.status, 200);
    const msg = await client.next((m) => repoIn(m, root) !== undefined);
    assert.match(repoIn(msg, root)!.unified_diff!, /\+from child/);
    client.close();
  });

  it("serves many connections of the same chat and a large path set", async () => {
    const root = initRepo(path.join(freshDir(), "many"));
    const chat = randomUUID();
    const paths = Array.from({ length: 500 }, (_, i) => path.join(root, `dir${i % 10}`, `f${i}.txt`));
    server.gitwatch.pathStore.addPaths([chat], paths);
    write(root, "dir0/f0.txt", "zero\n");
    const clients = await Promise.all([1, 2, 3].map(() => WatchClient.connect(server.url, `?chat_id=${chat}`)));
    for (const c of clients) {
      const msg = await c.next((m) => repoIn(m, root) !== undefined);
      assert.equal(msg.repositories!.length, 1);
      c.close();
    }
  });

  it("keeps concurrent chats apart: each socket sees only its own chat's repositories", async () => {
    const base = freshDir();
    const a = initRepo(path.join(base, "chat-a"));
    const b = initRepo(path.join(base, "chat-b"));
    const [chatA, chatB] = [randomUUID(), randomUUID()];
    server.gitwatch.pathStore.addPaths([chatA], [a]);
    server.gitwatch.pathStore.addPaths([chatB], [b]);
    const [ca, cb] = await Promise.all([
      WatchClient.connect(server.url, `?chat_id=${chatA}`),
      WatchClient.connect(server.url, `?chat_id=${chatB}`),
    ]);
    await ca.next((m) => repoIn(m, a) !== undefined);
    await cb.next((m) => repoIn(m, b) !== undefined);
    assert.ok(ca.messages.every((m) => repoIn(m, b) === undefined));
    assert.ok(cb.messages.every((m) => repoIn(m, a) === undefined));
    ca.close();
    cb.close();
  });

  it("rejects POST /api/v0/git/paths without a chat id or with a bad body", async () => {
    const noChat = await fetch(`${server.url}/api/v0/git/paths`, { method: "POST", body: '{"paths":[]}' });
    assert.equal(noChat.status, 400);
    const badBody = await fetch(`${server.url}/api/v0/git/paths`, {
      method: "POST",
      headers: { "Coder-Chat-Id": randomUUID() },
      body: '{"paths":"x"}',
    });
    assert.equal(badBody.status, 400);
    assert.ok(((await badBody.json()) as { message: string }).message);
  });

  it("adds and lists paths over the Connect GitWatchService", async () => {
    const client = createClient(GitWatchService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const chat = randomUUID();
    const parent = randomUUID();
    await client.addPaths({ chatId: chat.toUpperCase(), ancestorChatIds: [parent], paths: ["/b", "/a"] });
    assert.deepEqual((await client.getPaths({ chatId: chat })).paths, ["/a", "/b"]);
    assert.deepEqual((await client.getPaths({ chatId: parent })).paths, ["/a", "/b"]);
    await assert.rejects(client.getPaths({ chatId: "nope" }), /chat_id must be a UUID/);
  });
});

describe("git watch triggers beyond refresh", () => {
  it("scans on the fallback poll", async () => {
    const server = await startWatchServer({ pollIntervalMs: 300 });
    try {
      const { client } = await watchNewRepo(server, "poll");
      await client.next(isChanges, { from: 1 });
      client.close();
    } finally {
      await server.close();
    }
  });

  it("sends a shell edit without any refresh, from a file-system event", async () => {
    const server = await startWatchServer({ pollIntervalMs: 600_000 });
    try {
      const root = initRepo(path.join(freshDir(), "fs"), { "README.md": "# Project\n", ".gitignore": "node_modules/\n" });
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [root]);
      const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      await client.next(isChanges);
      await waitFor(async () => (await metricValue(server, "agentd_gitwatch_fs_watched_repos")) === 1);
      const seen = client.messages.length;
      write(root, "README.md", "# Edited from a shell\n");
      const msg = await client.next((m) => repoIn(m, root) !== undefined, { from: seen });
      assert.match(repoIn(msg, root)!.unified_diff!, /\+# Edited from a shell/);
      client.close();
      await waitFor(async () => (await metricValue(server, "agentd_gitwatch_fs_watched_repos")) === 0);
    } finally {
      await server.close();
    }
  });

  it("falls back to the poll past the file-system watch limit, counting the hit", async () => {
    const server = await startWatchServer({ pollIntervalMs: 300, maxFsWatchedRepos: 1 });
    try {
      const base = freshDir();
      const one = initRepo(path.join(base, "one"));
      const two = initRepo(path.join(base, "two"));
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [one, two]);
      const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      await client.next((m) => repoIn(m, one) !== undefined && repoIn(m, two) !== undefined);
      assert.equal(await metricValue(server, "agentd_gitwatch_fs_watch_limit_hits_total"), 1);
      const seen = client.messages.length;
      write(two, "later.txt", "polled\n");
      await client.next((m) => repoIn(m, two) !== undefined, { from: seen });
      client.close();
    } finally {
      await server.close();
    }
  });
});

describe("git watch flow control", () => {
  it("stops reading a client that does not read its replies, and loses none of them", async () => {
    const server = await startWatchServer();
    try {
      const client = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`);
      client.ws.pause();
      // Far more replies than the loopback socket buffers hold, if the server kept reading.
      const frame = JSON.stringify({ type: "flood", pad: "p".repeat(200) });
      let sent = 0;
      let stalled = false;
      while (!stalled && sent < 2_000_000) {
        for (let i = 0; i < 5_000; i++) client.ws.send(frame);
        sent += 5_000;
        await new Promise((r) => setTimeout(r, 10));
        if (client.ws.bufferedAmount < 8 * 1024 * 1024) continue;
        // Stalled when, with nothing more sent, the server takes nothing more.
        const queued = client.ws.bufferedAmount;
        await new Promise((r) => setTimeout(r, 500));
        stalled = client.ws.bufferedAmount === queued;
      }
      assert.ok(stalled, `the server kept reading all ${sent} frames`);
      client.ws.resume();
      await waitFor(async () => client.messages.length >= sent, 120_000);
      assert.equal(client.messages.length, sent);
      assert.ok(client.messages.every((m) => m.type === "error"));
      client.close();
    } finally {
      await server.close();
    }
  });
});

describe("git watch keep-alive", () => {
  it("cuts a connection that stops answering pings and keeps one that answers", async () => {
    const server = await startWatchServer({ keepAlive: { pingIntervalMs: 100, pongTimeoutMs: 200 } });
    try {
      const silent = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`, { autoPong: false });
      const live = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`);
      assert.equal((await silent.closed).code, 1006);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(live.ws.readyState, live.ws.OPEN);
      live.close();
    } finally {
      await server.close();
    }
  });

  it("keeps a peer whose pongs arrive after the next ping interval but within the pong timeout", async () => {
    const server = await startWatchServer({ keepAlive: { pingIntervalMs: 100, pongTimeoutMs: 1_000 } });
    try {
      const slow = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`, { autoPong: false });
      let pings = 0;
      slow.ws.on("ping", (data) => {
        pings++;
        setTimeout(() => slow.ws.pong(data), 150);
      });
      await new Promise((r) => setTimeout(r, 2_500));
      assert.ok(pings >= 2, `pinged ${pings} times`);
      assert.equal(slow.ws.readyState, slow.ws.OPEN);
      slow.close();
    } finally {
      await server.close();
    }
  });
});

describe("git watch without git installed", () => {
  it("accepts connections and stays silent", async () => {
    const server = await startWatchServer({ gitBinary: "git-not-installed-here" });
    try {
      const root = initRepo(path.join(freshDir(), "nogit"));
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [root]);
      const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      await assertSilentAfterRefresh(client);
      client.close();
    } finally {
      await server.close();
    }
  });
});

describe("git watch across a restart", () => {
  it("a new socket for the chat gets its repository again after the part restarts", async () => {
    const dataDir = freshDir();
    const root = initRepo(path.join(freshDir(), "persist"));
    const chat = randomUUID();
    const first = await startWatchServer({ dataDir });
    first.gitwatch.pathStore.addPaths([chat], [write(root, "kept.txt", "kept\n")]);
    await first.close();
    const second = await startWatchServer({ dataDir });
    try {
      const client = await WatchClient.connect(second.url, `?chat_id=${chat}`);
      const msg = await client.next((m) => repoIn(m, root) !== undefined);
      assert.match(repoIn(msg, root)!.unified_diff!, /\+kept/);
      client.close();
    } finally {
      await second.close();
    }
  });
});

/** A new repository tracked by a new chat, and a socket on that chat that has had its first `changes`. */
async function watchNewRepo(server: WatchServer, name: string): Promise<{ root: string; client: WatchClient }> {
  const root = initRepo(path.join(freshDir(), name));
  const chat = randomUUID();
  server.gitwatch.pathStore.addPaths([chat], [root]);
  const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
  await client.next(isChanges);
  return { root, client };
}

/**
 * Sends a refresh and then an unknown type as a marker, and checks that the
 * marker's error is all that arrives, also for a while after it.
 */
async function assertSilentAfterRefresh(client: WatchClient): Promise<void> {
  client.send({ type: "refresh" });
  client.send({ type: "marker" });
  await client.next((m) => m.type === "error");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(
    client.messages.map((m) => m.type),
    ["error"],
  );
}

/** Sends a WebSocket upgrade request by hand and reads the status line and body of the answer. */
async function rawUpgrade(base: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  const socket = net.connect(Number(port), hostname);
  socket.write(
    `GET ${target} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  const [head = "", body = ""] = text.split("\r\n\r\n");
  return { status: Number(head.split(" ")[1]), body };
}

async function metricValue(server: WatchServer, name: string): Promise<number | undefined> {
  const text = await server.registry.getSingleMetricAsString(name);
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}
