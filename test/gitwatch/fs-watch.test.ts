import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { Registry } from "prom-client";
import { FsWatchHub } from "../../src/gitwatch/fs-watch.js";
import { GitRunner } from "../../src/gitwatch/git.js";
import { GitWatchMetrics } from "../../src/gitwatch/metrics.js";
import { createLogger } from "../../src/log.js";
import { tempDir } from "../helpers/agentd.js";
import { initRepo } from "./helpers.js";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe("file-system watch hub", () => {
  it("reports a change made while the watch was still being set up, once the watch is ready", async () => {
    const dir = tempDir("agentd-fswatch-");
    dirs.push(dir);
    const root = initRepo(path.join(dir, "repo"));
    const hub = new FsWatchHub({
      maxRepos: 4,
      git: new GitRunner(2),
      log: createLogger("silent"),
      metrics: new GitWatchMetrics(new Registry()),
    });
    try {
      const changed = new Promise<boolean>((resolve) => hub.acquire(root, () => resolve(true)));
      // Written before the watcher exists: no file-system event will ever report it.
      fs.writeFileSync(path.join(root, "early.txt"), "before the watch\n");
      const silence = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000).unref());
      assert.equal(await Promise.race([changed, silence]), true, "the listener hears of the change once the watch is ready");
    } finally {
      await hub.close();
    }
  });
});
