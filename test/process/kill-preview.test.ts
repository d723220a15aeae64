import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KILL_PREVIEW_TTL_MS, KillPreviews, MAX_PENDING_PREVIEWS } from "../../src/process/kill-preview.js";

describe("kill preview tokens", () => {
  it("confirm exactly the previewed ids and signal, in any order, once", () => {
    const previews = new KillPreviews();
    const { token } = previews.issue(["a", "b"], 1);
    assert.equal(previews.redeem(token, ["b", "a"], 1), undefined);
    assert.equal(previews.redeem(token, ["b", "a"], 1), "unknown");
  });

  it("expire 60 s after the preview", () => {
    let now = 1_000;
    const previews = new KillPreviews(() => now);
    const { token, expiresAtMs } = previews.issue(["a"], 1);
    assert.equal(KILL_PREVIEW_TTL_MS, 60_000);
    assert.equal(expiresAtMs, 61_000);
    now += KILL_PREVIEW_TTL_MS + 1;
    assert.equal(previews.redeem(token, ["a"], 1), "expired");
  });

  it("refuse other ids or another signal, and are spent by the refused attempt", () => {
    const previews = new KillPreviews();
    const first = previews.issue(["a", "b"], 1);
    assert.equal(previews.redeem(first.token, ["a"], 1), "mismatch");
    assert.equal(previews.redeem(first.token, ["a", "b"], 1), "unknown");
    const second = previews.issue(["a"], 1);
    assert.equal(previews.redeem(second.token, ["a"], 2), "mismatch");
  });

  it("are random and unknown tokens are refused", () => {
    const previews = new KillPreviews();
    assert.notEqual(previews.issue(["a"], 1).token, previews.issue(["a"], 1).token);
    assert.equal(previews.redeem("made-up", ["a"], 1), "unknown");
  });

  it("keep a bounded number pending, forgetting the oldest", () => {
    const previews = new KillPreviews();
    const oldest = previews.issue(["a"], 1);
    for (let i = 0; i < MAX_PENDING_PREVIEWS; i++) previews.issue([`p${i}`], 1);
    assert.equal(previews.redeem(oldest.token, ["a"], 1), "unknown");
  });
});
