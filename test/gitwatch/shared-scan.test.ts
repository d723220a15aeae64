import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import type { GitServerMessage } from "../../src/gitwatch/messages.js";
import { MAX_CLIENT_MESSAGE_BYTES } from "../../src/gitwatch/route.js";
import {
  freshDirs,
  git,
  initRepo,
  metricSum,
  repoIn,
  startWatchServer,
  waitUntil,
  WatchClient,
  write,
  type WatchServer,
} from "./helpers.js";

const freshDir = freshDirs("agentd-gitwatch-shared-");

const isChanges = (m: GitServerMessage) => m.type === "changes";
const scans = (server: WatchServer) => metricSum(server.registry, "agentd_gitwatch_repo_scans_total");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` against a fresh server and always closes it. */
async function withServer(
  opts: Parameters<typeof startWatchServer>[0],
  fn: (server: WatchServer) => Promise<void>,
): Promise<void> {
  const server = await startWatchServer(opts);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

describe("git watch: one scan per repository, shared by every connection", () => {
  it("scans once for a trigger that reaches 20 sockets of one chat, and every socket gets the result", async () => {
    // No file-system watch and no poll: the path notification is the only trigger.
    await withServer({ pollIntervalMs: 600_000, maxFsWatchedRepos: 0 }, async (server) => {
      const root = initRepo(path.join(freshDir(), "shared"));
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [root]);
      const clients = await Promise.all(
        Array.from({ length: 20 }, () => WatchClient.connect(server.url, `?chat_id=${chat}`)),
      );
      await Promise.all(clients.map((c) => c.next((m) => repoIn(m, root) !== undefined)));
      assert.ok((await scans(server)) < clients.length, "opening the sockets shared scans");
      // Let any follow-up scan of the opening finish.
      await sleep(1_500);
      const before = await scans(server);
      const seen = clients.map((c) => c.messages.length);
      write(root, "shared.txt", "for everyone\n");
      server.gitwatch.pathStore.notify([chat]);
      const got = await Promise.all(clients.map((c, i) => c.next(isChanges, { from: seen[i] })));
      for (const m of got) assert.match(repoIn(m, root)?.unified_diff ?? "", /\+for everyone/);
      await sleep(1_500);
      assert.equal((await scans(server)) - before, 1);
      for (const [i, c] of clients.entries()) assert.equal(c.messages.length, seen[i]! + 1, "one message per socket");
      clients.forEach((c) => c.close());
    });
  });

  it("answers a socket joining a repository under a live file-system watch from the shared result, without a scan", async () => {
    await withServer({ pollIntervalMs: 600_000 }, async (server) => {
      const root = initRepo(path.join(freshDir(), "late"));
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [write(root, "x.txt", "x\n")]);
      const early = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      await early.next((m) => repoIn(m, root) !== undefined);
      await waitUntil(async () => (await metricSum(server.registry, "agentd_gitwatch_fs_watched_repos")) === 1);
      // The scan the watch asks for once it is ready.
      await sleep(1_500);
      const before = await scans(server);
      const earlySeen = early.messages.length;
      const late = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      const first = await late.next(isChanges);
      assert.match(repoIn(first, root)?.unified_diff ?? "", /\+x/, "dedupe is per socket: the late one gets the repository");
      assert.equal(await scans(server), before);
      await sleep(200);
      assert.equal(early.messages.length, earlySeen, "the early socket is not disturbed");
      early.close();
      late.close();
    });
  });
});

describe("git watch fingerprint poll", () => {
  it("sees an edit without file-system events at the poll, and does not rescan while nothing changed", async () => {
    await withServer({ pollIntervalMs: 300, maxFsWatchedRepos: 0 }, async (server) => {
      const root = initRepo(path.join(freshDir(), "poll"));
      write(root, "dirty.txt", "one\n");
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [root]);
      const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      await client.next((m) => repoIn(m, root) !== undefined);
      const scansBefore = await scans(server);
      const unchangedBefore = await metricSum(server.registry, "agentd_gitwatch_fingerprint_checks_total", {
        result: "unchanged",
      });
      // Several poll intervals of heartbeats (fresh scanned_at, no repositories) and no rescan.
      await client.next(isChanges, { from: 3 });
      assert.ok(client.messages.slice(1).every((m) => m.repositories === undefined));
      assert.equal(await scans(server), scansBefore);
      const unchanged = await metricSum(server.registry, "agentd_gitwatch_fingerprint_checks_total", {
        result: "unchanged",
      });
      assert.ok(unchanged >= unchangedBefore + 2, `unchanged checks: ${unchanged}`);
      // Same size, same status line: only the mtime tells the fingerprint about this edit.
      const seen = client.messages.length;
      write(root, "dirty.txt", "two\n");
      const msg = await client.next((m) => repoIn(m, root) !== undefined, { from: seen });
      assert.match(repoIn(msg, root)!.unified_diff!, /\+two/);
      assert.ok(
        (await metricSum(server.registry, "agentd_gitwatch_fingerprint_checks_total", { result: "changed" })) >= 1,
      );
      client.close();
    });
  });

  it("sees a branch switch on a clean tree at the poll", async () => {
    await withServer({ pollIntervalMs: 300, maxFsWatchedRepos: 0 }, async (server) => {
      const root = initRepo(path.join(freshDir(), "branch"));
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [root]);
      const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      await client.next((m) => repoIn(m, root) !== undefined);
      const seen = client.messages.length;
      git(root, "branch", "other");
      // Written by hand: nothing in the worktree or the index changes, only HEAD.
      fs.writeFileSync(path.join(root, ".git", "HEAD"), "ref: refs/heads/other\n");
      const msg = await client.next((m) => repoIn(m, root) !== undefined, { from: seen });
      assert.equal(repoIn(msg, root)!.branch, "other");
      client.close();
    });
  });
});

describe("git watch scan cancellation", () => {
  it("kills a scan's git child on refresh and starts a fresh scan, and kills it when the last socket closes", async () => {
    const dir = freshDir();
    const pids = path.join(dir, "pids");
    const hang = path.join(dir, "hang");
    const fakeGit = path.join(dir, "git");
    // Every `git diff` hangs (and records its pid) while the `hang` file exists; the rest is real git.
    fs.writeFileSync(
      fakeGit,
      `#!/bin/sh\nfor a in "$@"; do\n  if [ "$a" = diff ] && [ -e '${hang}' ]; then echo $$ >> '${pids}'; exec sleep 60; fi\ndone\nexec git "$@"\n`,
      { mode: 0o755 },
    );
    await withServer({ pollIntervalMs: 600_000, maxFsWatchedRepos: 0, gitBinary: fakeGit }, async (server) => {
      const root = initRepo(path.join(dir, "repo"));
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [root]);
      fs.writeFileSync(hang, "");
      const readPids = () => (fs.existsSync(pids) ? fs.readFileSync(pids, "utf8").split("\n").filter(Boolean) : []);
      const client = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      await waitUntil(() => readPids().length > 0);
      const first = readPids().map(Number);
      client.send({ type: "refresh" });
      await waitUntil(() => first.every((pid) => !alive(pid)));
      await waitUntil(() => readPids().length > first.length);
      assert.equal(
        await metricSum(server.registry, "agentd_gitwatch_scan_cancels_total", { reason: "refresh" }),
        1,
      );
      const second = readPids().map(Number).slice(first.length);
      assert.ok(second.some(alive), "the fresh scan is running");
      client.close();
      await waitUntil(() => second.every((pid) => !alive(pid)));
      assert.equal(
        await metricSum(server.registry, "agentd_gitwatch_scan_cancels_total", { reason: "unwatched" }),
        1,
      );
      assert.deepEqual(client.messages, [], "a cancelled scan sends nothing");
    });
  });
});

describe("git watch client message limit", () => {
  it("reads a client message of 4 MiB and closes the socket 1009 on a larger one", async () => {
    await withServer({}, async (server) => {
      const client = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`);
      const frame = (size: number) => {
        const head = '{"type":"big","pad":"';
        return head + "p".repeat(size - head.length - 2) + '"}';
      };
      client.send(frame(MAX_CLIENT_MESSAGE_BYTES));
      assert.deepEqual(await client.next(), { type: "error", message: "unknown message type" });
      client.send(frame(MAX_CLIENT_MESSAGE_BYTES + 1));
      assert.equal((await client.closed).code, 1009);
    });
  });
});

describe("git watch working-directory fallback", () => {
  it("watches the working directory for a chat with no tracked paths, and only the tracked paths once there are some", async () => {
    const base = freshDir();
    const workdir = initRepo(path.join(base, "workdir"));
    write(workdir, "wip.txt", "work in progress\n");
    const other = initRepo(path.join(base, "other"));
    await withServer({ pollIntervalMs: 600_000, workdir }, async (server) => {
      const fresh = await WatchClient.connect(server.url, `?chat_id=${randomUUID()}`);
      const msg = await fresh.next((m) => repoIn(m, workdir) !== undefined);
      assert.match(repoIn(msg, workdir)!.unified_diff!, /\+work in progress/);
      fresh.close();
      const chat = randomUUID();
      server.gitwatch.pathStore.addPaths([chat], [other]);
      const tracked = await WatchClient.connect(server.url, `?chat_id=${chat}`);
      const first = await tracked.next(isChanges);
      assert.deepEqual(first.repositories, [{ repo_root: other, branch: "main" }]);
      tracked.close();
    });
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
