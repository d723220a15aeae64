import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { unifiedDiff } from "../../src/files/edit-engine.js";

const diff = (before: string | Buffer, after: string | Buffer, label = "/src/a.txt") =>
  unifiedDiff(label, Buffer.from(before), Buffer.from(after));

describe("unifiedDiff", () => {
  it("is empty when nothing changed", () => {
    assert.equal(diff("same\n", "same\n"), "");
    assert.equal(diff("", ""), "");
  });

  it("labels both sides with the caller's path and shows one changed line", () => {
    assert.equal(diff("hello world\n", "HELLO world\n"), "--- /src/a.txt\n+++ /src/a.txt\n@@ -1 +1 @@\n-hello world\n+HELLO world\n");
  });

  it("keeps three lines of context and merges changes up to six lines apart into one hunk", () => {
    const before = Array.from({ length: 20 }, (_, i) => `l${i + 1}\n`);
    const after = before.map((l) => (["l2\n", "l5\n", "l20\n"].includes(l) ? l.toUpperCase() : l));
    assert.equal(
      diff(before.join(""), after.join("")),
      "--- /src/a.txt\n+++ /src/a.txt\n" +
        "@@ -1,8 +1,8 @@\n l1\n-l2\n+L2\n l3\n l4\n-l5\n+L5\n l6\n l7\n l8\n" +
        // go-udiff does not count the lines joining the first hunk's edits toward later new-file line numbers.
        "@@ -17,4 +15,4 @@\n l17\n l18\n l19\n-l20\n+L20\n",
    );
  });

  it("opens a new hunk for changes more than six lines apart", () => {
    const before = Array.from({ length: 12 }, (_, i) => `l${i + 1}\n`);
    const after = before.map((l) => (l === "l1\n" || l === "l12\n" ? "X\n" : l));
    assert.equal(
      diff(before.join(""), after.join("")),
      "--- /src/a.txt\n+++ /src/a.txt\n@@ -1,4 +1,4 @@\n-l1\n+X\n l2\n l3\n l4\n@@ -9,4 +9,4 @@\n l9\n l10\n l11\n-l12\n+X\n",
    );
  });

  it("marks lines without a final newline as go-udiff does", () => {
    assert.equal(
      diff("a\nb", "a\nc"),
      "--- /src/a.txt\n+++ /src/a.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n",
    );
    assert.equal(diff("a\n", "a"), "--- /src/a.txt\n+++ /src/a.txt\n@@ -1 +1 @@\n-a\n+a\n\\ No newline at end of file\n");
  });

  it("writes -0,0 and +0,0 for an empty side", () => {
    assert.equal(diff("", "x\n"), "--- /src/a.txt\n+++ /src/a.txt\n@@ -0,0 +1 @@\n+x\n");
    assert.equal(diff("x\n", ""), "--- /src/a.txt\n+++ /src/a.txt\n@@ -1 +0,0 @@\n-x\n");
  });

  it("shows pure insertions between kept lines", () => {
    assert.equal(diff("a\nb\nc\nd\n", "a\nX\nb\nc\nY\nd\n"), "--- /src/a.txt\n+++ /src/a.txt\n@@ -1,4 +1,6 @@\n a\n+X\n b\n c\n+Y\n d\n");
  });

  it("keeps CR bytes inside CRLF lines", () => {
    assert.equal(diff("a\r\nb\r\n", "a\r\nB\r\n"), "--- /src/a.txt\n+++ /src/a.txt\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+B\r\n");
  });

  it("turns invalid UTF-8 into U+FFFD as Go's JSON encoding would, and keeps valid UTF-8", () => {
    const before = Buffer.from([0x61, 0xff, 0x0a]);
    const after = Buffer.from("aé\n");
    assert.equal(diff(before, after, "/tmp/ü"), "--- /tmp/ü\n+++ /tmp/ü\n@@ -1 +1 @@\n-a\uFFFD\n+aé\n");
  });

  it("reports a large rewrite of unrelated content as whole-line changes", () => {
    const before = Array.from({ length: 3000 }, (_, i) => `a${i}\n`).join("");
    const after = Array.from({ length: 3000 }, (_, i) => `b${i}\n`).join("");
    const out = diff(before, after);
    assert.ok(out.startsWith("--- /src/a.txt\n+++ /src/a.txt\n@@ -1,3000 +1,3000 @@\n-a0\n"));
    assert.equal(out.split("\n").filter((l) => l.startsWith("-a")).length, 3000);
    assert.equal(out.split("\n").filter((l) => l.startsWith("+b")).length, 3000);
  });
});

/** Applies a unified diff to `before` using only its old-side line numbers, checking every context and removed line. */
function patch(before: string, diffText: string): string {
  const old = before.split(/(?<=\n)/).filter((l) => l !== "");
  const rows = diffText.split(/(?<=\n)/).slice(2);
  const out: string[] = [];
  let next = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const header = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@\n$/.exec(row);
    if (header) {
      const start = Math.max(Number(header[1]) - 1, 0) + (header[2] === "0" && header[1] !== "0" ? 1 : 0);
      while (next < start) out.push(old[next++]!);
      continue;
    }
    let text = row.slice(1);
    if (rows[i + 1] === "\\ No newline at end of file\n") {
      text = text.slice(0, -1);
      i++;
    }
    if (row[0] === "+") out.push(text);
    else {
      assert.equal(old[next], text, `line ${next + 1} of the old side`);
      if (row[0] === " ") out.push(text);
      next++;
    }
  }
  while (next < old.length) out.push(old[next++]!);
  return out.join("");
}

describe("unifiedDiff properties", () => {
  const text = fc.array(fc.constantFrom("a\n", "b\n", "c\n", "a", "\r\n", "\n"), { maxLength: 40 }).map((parts) => parts.join(""));

  it("is a patch that turns the old content into the new one", () => {
    fc.assert(
      fc.property(text, text, (before, after) => {
        const out = diff(before, after);
        assert.equal(out === "", before === after);
        if (out !== "") assert.equal(patch(before, out), after);
      }),
    );
  });

  it("states each hunk's old-side line count correctly", () => {
    fc.assert(
      fc.property(text, text, (before, after) => {
        for (const hunk of diff(before, after).split(/^(?=@@ )/m).slice(1)) {
          const [header, ...rows] = hunk.split("\n");
          const count = /^@@ -\d+(?:,(\d+))? /.exec(header!)![1];
          const old = rows.filter((r) => r.startsWith(" ") || r.startsWith("-")).length;
          assert.equal(old, count === undefined ? 1 : Number(count));
        }
      }),
    );
  });
});
