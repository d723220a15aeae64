import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { Registry } from "prom-client";
import { AgentSocketPart } from "../../src/agentsocket/agent-socket.js";
import { UsageError } from "../../src/errors.js";
import { createLogger } from "../../src/log.js";
import { tempDir } from "../helpers/agentd.js";
import { RecordingUpstream } from "./fixtures.js";

/** Starting on `target` must fail with a UsageError matching `text`, and stop cleanly whatever happens. */
async function refuses(target: string, text: RegExp): Promise<void> {
  const part = new AgentSocketPart(target, new RecordingUpstream(), createLogger("silent"), new Registry());
  try {
    await assert.rejects(part.start(), (err: unknown) => {
      assert.ok(err instanceof UsageError, String(err));
      assert.match(err.message, text);
      return true;
    });
  } finally {
    await part.stop();
  }
}

test("a path that holds a regular file or a directory is refused and left alone", async () => {
  const dir = tempDir("agentsocket-");
  try {
    const file = path.join(dir, "notes.txt");
    fs.writeFileSync(file, "keep me");
    await refuses(file, /^--agent-socket: .*notes\.txt exists and is not a socket: move that file away or choose another --agent-socket$/);
    assert.equal(fs.readFileSync(file, "utf8"), "keep me");
    const sub = path.join(dir, "sub");
    fs.mkdirSync(sub);
    fs.writeFileSync(path.join(sub, "inner"), "x");
    await refuses(sub, /^--agent-socket: .*sub exists and is not a socket: move that file away or choose another --agent-socket$/);
    assert.equal(fs.readFileSync(path.join(sub, "inner"), "utf8"), "x");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
