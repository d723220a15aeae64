import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { startAgentd, tempDir } from "../helpers/agentd.js";
import { FilesClient } from "./helpers.js";

const FILES = 200;
const SIZE = 1024 * 1024;

const dir = tempDir("agentd-files-crash-");
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** 1 MiB of `fill` with the file's number at the front, so no two files or versions are alike. */
function content(i: number, fill: string): Buffer {
  const b = Buffer.alloc(SIZE, fill);
  b.write(`file ${i} ${fill}\n`);
  return b;
}

describe("crash safety", () => {
  it("SIGKILL during 200 concurrent 1 MiB writes: after a restart every file holds its old or its new content entirely", async () => {
    const work = path.join(dir, "work");
    fs.mkdirSync(work);
    const files = Array.from({ length: FILES }, (_, i) => path.join(work, `f${i}.bin`));
    files.forEach((p, i) => fs.writeFileSync(p, content(i, "o")));

    const first = await startAgentd({ dir });
    const api = new FilesClient(first.url);
    let done = 0;
    const firstDone = new Promise<void>((resolve) => {
      const writes = files.map((p, i) =>
        api.write(p, content(i, "n")).then(
          () => {
            done++;
            resolve();
          },
          () => undefined,
        ),
      );
      void Promise.all(writes).then(() => resolve());
    });
    await firstDone;
    await first.stop("SIGKILL");

    const second = await startAgentd({ dir });
    try {
      const reader = new FilesClient(second.url);
      let fresh = 0;
      for (const [i, p] of files.entries()) {
        const got = fs.readFileSync(p);
        const isNew = got.equals(content(i, "n"));
        assert.ok(isNew || got.equals(content(i, "o")), `${p} holds neither version (${got.length} bytes)`);
        if (isNew) fresh++;
      }
      assert.ok(fresh >= done, `every acknowledged write is on disk (${fresh} new, ${done} acknowledged)`);
      // The restarted daemon serves and replaces the same files.
      assert.equal((await reader.readFile({ path: files[1]!, limit: "7" })).text, "file 1 ");
      assert.equal((await reader.write(files[0]!, "after restart")).status, 200);
    } finally {
      await second.stop();
    }
  });
});
