import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { describe, it } from "node:test";
import type { GitServerMessage } from "../../src/gitwatch/messages.js";
import { freshDirs, initRepo, repoIn, WatchClient } from "../gitwatch/helpers.js";
import { filesFixture, FilesClient } from "./helpers.js";

// A poll once an hour: every message below comes from the files API adding paths.
const { agentd } = filesFixture({ args: ["--git-watch-poll-interval", "3600"] });
const freshDir = freshDirs("agentd-files-gitwatch-");

const hasRepo = (root: string) => (m: GitServerMessage) => repoIn(m, root) !== undefined;

describe("files API and git watch", () => {
  it("a write-file and an edit-files in a sub-agent chat reach the parent chat's socket without a refresh", async () => {
    const written = initRepo(path.join(freshDir(), "written"));
    const edited = initRepo(path.join(freshDir(), "edited"), { "main.go": "package main\n\nfunc main() {}\n" });
    const parent = randomUUID();
    const chat = randomUUID();
    const headers = { "Coder-Chat-Id": chat, "Coder-Ancestor-Chat-Ids": JSON.stringify([parent]) };
    const client = await WatchClient.connect(agentd().url, `?chat_id=${parent}`);
    try {
      const api = new FilesClient(agentd().url);
      const w = await api.write(path.join(written, "notes.txt"), "written by write-file\n", headers);
      assert.equal(w.status, 200);
      const first = await client.next(hasRepo(written));
      assert.match(repoIn(first, written)!.unified_diff!, /\+written by write-file/);

      const e = await api.edit(
        { files: [{ path: path.join(edited, "main.go"), edits: [{ old_text: "func main() {}", new_text: "func main() { run() }" }] }] },
        headers,
      );
      assert.equal(e.status, 200);
      const second = await client.next(hasRepo(edited));
      assert.match(repoIn(second, edited)!.unified_diff!, /\+func main\(\) \{ run\(\) \}/);

      const paths = await (await fetch(`${agentd().url}/api/v0/git/paths`, { headers: { "Coder-Chat-Id": chat } })).json();
      assert.deepEqual(paths, { paths: [path.join(edited, "main.go"), path.join(written, "notes.txt")].sort() });
    } finally {
      client.close();
    }
  });

  it("a failed write or edit tracks nothing", async () => {
    const repo = initRepo(path.join(freshDir(), "failed"));
    const chat = randomUUID();
    const api = new FilesClient(agentd().url);
    assert.equal((await api.write(repo, "a directory cannot be written", { "Coder-Chat-Id": chat })).status, 400);
    const edit = { files: [{ path: path.join(repo, "README.md"), edits: [{ old_text: "absent", new_text: "x" }] }] };
    assert.equal((await api.edit(edit, { "Coder-Chat-Id": chat })).status, 400);
    const paths = await (await fetch(`${agentd().url}/api/v0/git/paths`, { headers: { "Coder-Chat-Id": chat } })).json();
    assert.deepEqual(paths, { paths: [] });
  });
});
