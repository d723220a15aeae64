import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { createLogger } from "../../src/log.js";

const TOKEN = "tok-9f8e7d6c5b4a39281706f5e4";

/** A logger at trace writing into a string. */
function capture(): { log: ReturnType<typeof createLogger>; text: () => string } {
  let text = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { log: createLogger("trace", sink), text: () => text };
}

describe("log redaction", () => {
  it("replaces token fields and credential headers with [redacted] at every level", () => {
    const { log, text } = capture();
    const child = log.child({ component: "test" });
    child.trace({ token: TOKEN }, "token field");
    child.debug({ opts: { token: TOKEN } }, "nested token field");
    child.info({ headers: { authorization: `Bearer ${TOKEN}`, "coder-session-token": TOKEN } }, "headers");
    child.warn({ req: { headers: { authorization: `Bearer ${TOKEN}`, "Coder-Session-Token": TOKEN } } }, "request");
    child.error({ authorization: `Bearer ${TOKEN}` }, "bare header");
    const out = text();
    assert.equal(out.trim().split("\n").length, 5);
    assert.ok(!out.includes(TOKEN), out);
    assert.equal(out.match(/\[redacted\]/g)?.length, 7);
  });
});
