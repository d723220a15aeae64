import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { describe, it } from "node:test";
import type { GitServerMessage } from "../../src/gitwatch/messages.js";
import { startAgentd } from "../helpers/agentd.js";
import { freshDirs, initRepo, repoIn, WatchClient, write } from "./helpers.js";

const freshDir = freshDirs("agentd-gitwatch-e2e-");

const hasRepo = (root: string) => (m: GitServerMessage) => repoIn(m, root) !== undefined;

describe("git watch in agentd serve", () => {
  it("streams paths added over REST, shows a shell edit without a refresh, and keeps paths across a restart", async () => {
    const dir = freshDir();
    const root = initRepo(path.join(freshDir(), "app"));
    const chat = randomUUID();
    const first = await startAgentd({ dir, args: ["--git-watch-poll-interval", "3600"] });
    try {
      const client = await WatchClient.connect(first.url, `?chat_id=${chat}`);
      const res = await fetch(`${first.url}/api/v0/git/paths`, {
        method: "POST",
        headers: { "Coder-Chat-Id": chat },
        body: JSON.stringify({ paths: [write(root, "tool.txt", "from a tool\n")] }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { paths: [path.join(root, "tool.txt")] });
      const msg = await client.next(hasRepo(root));
      assert.match(repoIn(msg, root)!.unified_diff!, /\+from a tool/);
      await waitForFsWatch(first.url);
      const seen = client.messages.length;
      write(root, "README.md", "# Edited from a shell\n");
      const edited = await client.next(hasRepo(root), { from: seen });
      assert.match(repoIn(edited, root)!.unified_diff!, /\+# Edited from a shell/);
      client.close();
    } finally {
      assert.equal(await first.stop(), 0);
    }
    const second = await startAgentd({ dir });
    try {
      const client = await WatchClient.connect(second.url, `?chat_id=${chat}`);
      const msg = await client.next(hasRepo(root));
      assert.match(repoIn(msg, root)!.unified_diff!, /\+from a tool/);
      client.close();
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });

  it("tracks a chat process's workdir on exit: its edit, then a later shell edit, reach the chat's socket", async () => {
    const root = initRepo(path.join(freshDir(), "proc"));
    const parent = randomUUID();
    const chat = randomUUID();
    const agentd = await startAgentd({ args: ["--git-watch-poll-interval", "3600"] });
    try {
      const client = await WatchClient.connect(agentd.url, `?chat_id=${parent}`);
      const res = await fetch(`${agentd.url}/api/v0/processes/start`, {
        method: "POST",
        headers: { "Coder-Chat-Id": chat, "Coder-Ancestor-Chat-Ids": JSON.stringify([parent]) },
        body: JSON.stringify({ command: "echo 'from a process' > made.txt", workdir: root }),
      });
      assert.equal(res.status, 200, await res.clone().text());
      const msg = await client.next(hasRepo(root));
      assert.match(repoIn(msg, root)!.unified_diff!, /\+from a process/);
      await waitForFsWatch(agentd.url);
      const seen = client.messages.length;
      write(root, "made.txt", "from a shell\n");
      const edited = await client.next(hasRepo(root), { from: seen });
      assert.match(repoIn(edited, root)!.unified_diff!, /\+from a shell/);
      client.close();
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  it("watches --workdir for a chat with no tracked path, and answers 400 to a chat_id that is not a UUID", async () => {
    const root = initRepo(path.join(freshDir(), "workdir"));
    write(root, "left.txt", "from before a restart\n");
    const agentd = await startAgentd({ args: ["--workdir", root, "--git-watch-poll-interval", "3600"] });
    try {
      const client = await WatchClient.connect(agentd.url, `?chat_id=${randomUUID()}`);
      const msg = await client.next(hasRepo(root));
      assert.match(repoIn(msg, root)!.unified_diff!, /\+from before a restart/);
      client.close();
      await assert.rejects(WatchClient.connect(agentd.url, "?chat_id=not-a-uuid"), /Unexpected server response: 400/);
    } finally {
      assert.equal(await agentd.stop(), 0);
    }
  });

  it("on SIGTERM closes open git watch sockets with 1001 and exits 0", async () => {
    const agentd = await startAgentd();
    const client = await WatchClient.connect(agentd.url, `?chat_id=${randomUUID()}`);
    assert.equal(await agentd.stop(), 0);
    assert.equal((await client.closed).code, 1001);
  });

  it("exposes git watch metrics with promtool-valid names", async () => {
    const agentd = await startAgentd();
    try {
      const text = await (await fetch(`${agentd.url}/metrics`)).text();
      for (const name of [
        "agentd_gitwatch_repo_scans_total",
        "agentd_gitwatch_scan_duration_seconds",
        "agentd_gitwatch_sent_bytes_total",
        "agentd_gitwatch_fs_watched_repos",
        "agentd_gitwatch_fs_watch_limit_hits_total",
        "agentd_gitwatch_scan_cancels_total",
        "agentd_gitwatch_fingerprint_checks_total",
      ]) {
        assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
      }
    } finally {
      await agentd.stop();
    }
  });
});

/** Waits until the daemon reports a ready file-system watch. */
async function waitForFsWatch(url: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const text = await (await fetch(`${url}/metrics`)).text();
    if (/^agentd_gitwatch_fs_watched_repos [1-9]/m.test(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("file-system watch never became ready");
}
